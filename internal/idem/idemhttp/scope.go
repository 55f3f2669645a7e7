package idemhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// ErrNoPrincipal is returned (wrapped) by APIGatewayV2Scope when the request
// was authorized but the authorizer context names no principal to scope the
// key by, or names it in a form that cannot be turned into a scope exactly.
// The middleware answers it with 403 (TypeCallerUnknown).
var ErrNoPrincipal = errors.New("idemhttp: the authorizer context names no caller")

// APIGatewayV2Scope returns the caller scope of r from the API Gateway HTTP
// API (payload 2.0) request context that aws-lambda-go-api-proxy's
// httpadapter.NewV2 ProxyWithContext puts in the request's context. The
// scope is what keys are namespaced by and what owns an order, so two
// requests get the same scope exactly when they come from the same caller.
// This is the one table of it (README's "Caller scope" repeats it):
//
//	authorizer     | scope                                   | notes
//	---------------+-----------------------------------------+---------------------------------------------
//	JWT            | "jwt:" + iss + "|" + sub                | a user, or a client-credentials token whose
//	               |                                         | sub is its client (Cognito, RFC 9068)
//	JWT, no sub    | "jwt-client:" + iss + "|" + client_id   | client-credentials tokens without sub
//	IAM, assumed   | "iam:" + the role's unique id: userId's | every session of one role is one caller (the
//	role           | part before ":" (AROA...)               | session name changes when a client restarts);
//	               |                                         | a role deleted and recreated under its name
//	               |                                         | is another caller
//	IAM, Cognito   | "cognito:" + identity pool id + "|" +   | the pool's role is shared by all its users
//	identity pool  | identity id                             |
//	IAM user       | "iam:" + the user's unique id (AIDA...) | likewise: a recreated user is another caller,
//	               |                                         | a renamed one the same
//	IAM, other     | "iam:" + the caller's ARN               | the account root, federated users
//	Lambda         | "lambda:" + principalId as a string     | from the authorizer's response context, or
//	               |                                         | its "sub" when there is no principalId; a
//	               |                                         | number is its exact decimal text
//	none, mTLS     | "mtls:" + issuer DN + "|" + serial      | a custom domain with mutual TLS
//	none           | "" (anonymous)                          | one scope shared by every anonymous caller
//
// In iss, issuer DN and identity pool id, "%" and "|" are percent-encoded,
// so the first "|" always ends the first part.
//
// A Lambda authorizer's context is a JSON object, so a numeric principalId
// is exact only if the event was decoded with json.Decoder.UseNumber (the
// bootstrap starts the runtime with lambda.WithUseNumber): a json.Number
// that is an integer (optional "-", digits) gives its text, so principalId
// 1234 and "1234" are one caller. A float64 (an event decoded without
// UseNumber, where ids that differ beyond 2^53 have already become equal),
// a number with a fraction or exponent, or any other type is
// ErrNoPrincipal: a caller is refused rather than possibly merged with
// another. The principalId must be a key of the authorizer's response
// context: API Gateway passes that map to the function as
// requestContext.authorizer.lambda, while the top-level principalId of an
// IAM-policy response is not documented to reach the integration (the
// aws-lambda-go event type has no field for it) and a simple response has
// none.
//
// An assumed role is scoped by its role, never its session: a role used by
// several people (IAM Identity Center's AWSReservedSSO_* roles, SAML
// federation into one role) is ONE caller, whose keys and orders all its
// users share; give people identities of their own (JWT) instead.
//
// ErrNoPrincipal is also returned for a JWT without iss, or without both
// sub and client_id; an IAM caller without a usable ARN, an assumed role or
// IAM user without its unique id (userId, else callerId); a Lambda context
// without principalId and sub. A request without an authorizer and without
// a client certificate (no API Gateway context, as in tests, or a route
// without an authorizer) gets "" and no error.
func APIGatewayV2Scope(r *http.Request) (string, error) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok {
		return "", nil
	}
	if a := rc.Authorizer; a != nil {
		switch {
		case a.JWT != nil:
			return jwtScope(a.JWT.Claims)
		case a.IAM != nil:
			return iamScope(a.IAM)
		case a.Lambda != nil:
			return lambdaScope(a.Lambda)
		}
	}
	if c := rc.Authentication.ClientCert; c.SerialNumber != "" {
		return "mtls:" + escapeBar(c.IssuerDN) + "|" + c.SerialNumber, nil
	}
	return "", nil
}

func jwtScope(claims map[string]string) (string, error) {
	iss := claims["iss"]
	if iss == "" {
		return "", fmt.Errorf("%w: the JWT has no iss claim", ErrNoPrincipal)
	}
	if sub := claims["sub"]; sub != "" {
		return "jwt:" + escapeBar(iss) + "|" + sub, nil
	}
	if id := claims["client_id"]; id != "" {
		return "jwt-client:" + escapeBar(iss) + "|" + id, nil
	}
	return "", fmt.Errorf("%w: the JWT has neither a sub nor a client_id claim", ErrNoPrincipal)
}

// roleID and userID match the principal identifiers API Gateway reports
// in userId (and callerId) for an assumed role, "AROA<id>:<session>", and
// for an IAM user, "AIDA<id>". IAM never reuses a unique id: a role or user
// deleted and created again under the same name gets a new one.
var (
	roleID = regexp.MustCompile(`^(AROA[0-9A-Z]+)(:.*)?$`)
	userID = regexp.MustCompile(`^AIDA[0-9A-Z]+$`)
)

// iamUserARN matches an IAM user's ARN (any path).
var iamUserARN = regexp.MustCompile(`^arn:[a-z0-9-]+:iam::[0-9]{12}:user/`)

func iamScope(iam *events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription) (string, error) {
	if id := iam.CognitoIdentity.IdentityID; id != "" {
		return "cognito:" + escapeBar(iam.CognitoIdentity.IdentityPoolID) + "|" + id, nil
	}
	arn := iam.UserARN
	if arn == "" {
		return "", fmt.Errorf("%w: the IAM caller has no ARN", ErrNoPrincipal)
	}
	principal := iam.UserID
	if principal == "" {
		principal = iam.CallerID
	}
	switch {
	case strings.Contains(arn, ":assumed-role/"):
		m := roleID.FindStringSubmatch(principal)
		if m == nil {
			return "", fmt.Errorf("%w: the assumed-role caller %q has no role id (userId %q)", ErrNoPrincipal, arn, principal)
		}
		return "iam:" + m[1], nil
	case iamUserARN.MatchString(arn):
		if !userID.MatchString(principal) {
			return "", fmt.Errorf("%w: the IAM user %q has no user id (userId %q)", ErrNoPrincipal, arn, principal)
		}
		return "iam:" + principal, nil
	}
	return "iam:" + arn, nil
}

// integer is the text of a JSON number that is a whole number.
var integer = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

func lambdaScope(ctx map[string]any) (string, error) {
	for _, field := range []string{"principalId", "sub"} {
		v, ok := ctx[field]
		if !ok || v == nil {
			continue
		}
		switch x := v.(type) {
		case string:
			if x == "" {
				continue
			}
			return "lambda:" + x, nil
		case json.Number:
			if !integer.MatchString(x.String()) {
				return "", fmt.Errorf("%w: the Lambda authorizer's %s %s is not a whole number", ErrNoPrincipal, field, x)
			}
			return "lambda:" + x.String(), nil
		case float64:
			return "", fmt.Errorf("%w: the Lambda authorizer's %s was decoded as a float64 and may have lost digits (decode events with lambda.WithUseNumber)", ErrNoPrincipal, field)
		default:
			return "", fmt.Errorf("%w: the Lambda authorizer's %s is a %T, not a string or number", ErrNoPrincipal, field, v)
		}
	}
	return "", fmt.Errorf("%w: the Lambda authorizer context has no principalId or sub", ErrNoPrincipal)
}

// escapeBar percent-encodes "%" and "|" so that the first "|" of a scope
// separates its two parts unambiguously.
func escapeBar(s string) string {
	return strings.NewReplacer("%", "%25", "|", "%7C").Replace(s)
}
