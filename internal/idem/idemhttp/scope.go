package idemhttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// ErrNoPrincipal is returned (wrapped) by APIGatewayV2Scope when the request
// was authorized but the authorizer context names no principal to scope the
// key by. The middleware answers it with 403 (TypeCallerUnknown).
var ErrNoPrincipal = errors.New("idemhttp: the authorizer context names no caller")

// APIGatewayV2Scope returns the caller scope of r from the API Gateway HTTP
// API (payload 2.0) request context that aws-lambda-go-api-proxy's
// httpadapter.NewV2 puts in the request's context. Scopes are prefixed by
// their source, so that callers of different kinds never share one:
//
//   - JWT authorizer: "jwt:" + iss + "|" + sub, with "%" and "|" in iss
//     percent-encoded (a JWT without sub is ErrNoPrincipal);
//   - IAM authorizer with a Cognito identity pool: "cognito:" + identity
//     pool id + "|" + identity id (the role ARN is shared by every user of
//     the pool, so it cannot scope);
//   - other IAM callers: "iam:" + the caller's ARN (for an assumed role the
//     full session ARN, so two sessions of one role are two callers), or
//     "iam:" + account id + ":" + user id when the ARN is missing;
//   - Lambda authorizer: "lambda:" + the "principalId" value of its context,
//     or else its "sub" value (neither is ErrNoPrincipal);
//   - no authorizer but a mutual-TLS client certificate: "mtls:" + issuer
//     DN + "|" + serial number.
//
// A request with none of these (no API Gateway context, as in local runs
// and tests, or a route without an authorizer) gets "", the anonymous
// scope shared by every anonymous caller. It never returns an error then.
func APIGatewayV2Scope(r *http.Request) (string, error) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok {
		return "", nil
	}
	if a := rc.Authorizer; a != nil {
		switch {
		case a.JWT != nil:
			sub := a.JWT.Claims["sub"]
			if sub == "" {
				return "", fmt.Errorf("%w: the JWT has no sub claim", ErrNoPrincipal)
			}
			return "jwt:" + escapeBar(a.JWT.Claims["iss"]) + "|" + sub, nil
		case a.IAM != nil:
			iam := a.IAM
			if id := iam.CognitoIdentity.IdentityID; id != "" {
				return "cognito:" + escapeBar(iam.CognitoIdentity.IdentityPoolID) + "|" + id, nil
			}
			if iam.UserARN != "" {
				return "iam:" + iam.UserARN, nil
			}
			if iam.AccountID != "" && iam.UserID != "" {
				return "iam:" + iam.AccountID + ":" + iam.UserID, nil
			}
			return "", fmt.Errorf("%w: the IAM caller has no ARN or user id", ErrNoPrincipal)
		case a.Lambda != nil:
			for _, field := range []string{"principalId", "sub"} {
				if v, ok := a.Lambda[field]; ok && v != nil && fmt.Sprint(v) != "" {
					return "lambda:" + fmt.Sprint(v), nil
				}
			}
			return "", fmt.Errorf("%w: the Lambda authorizer context has no principalId or sub", ErrNoPrincipal)
		}
	}
	if c := rc.Authentication.ClientCert; c.SerialNumber != "" {
		return "mtls:" + escapeBar(c.IssuerDN) + "|" + c.SerialNumber, nil
	}
	return "", nil
}

// escapeBar percent-encodes "%" and "|" so that the first "|" of a scope
// separates its two parts unambiguously.
func escapeBar(s string) string {
	return strings.NewReplacer("%", "%25", "|", "%7C").Replace(s)
}
