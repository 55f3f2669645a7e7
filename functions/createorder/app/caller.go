package app

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
)

// ErrAnonymous is returned (wrapped, with idemhttp.ErrNoPrincipal) by the
// service's scope function for a request without an identified caller when
// the deployment is not AuthNone.
var ErrAnonymous = errors.New("app: the request has no identified caller and this deployment requires one (AUTH_MODE=jwt)")

// callerScope returns the service's caller scope function: the scope
// idemhttp.APIGatewayV2Scope derives (see its table), except that the
// anonymous scope "" is an error wrapping ErrAnonymous and
// idemhttp.ErrNoPrincipal unless allowAnonymous. Idempotency keys and order
// ownership both use it, so a caller's keys and orders have one owner.
func callerScope(allowAnonymous bool) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		s, err := idemhttp.APIGatewayV2Scope(r)
		if err == nil && s == "" && !allowAnonymous {
			return "", fmt.Errorf("%w (%w)", ErrAnonymous, idemhttp.ErrNoPrincipal)
		}
		return s, err
	}
}

// identifyCaller serves next with the caller's scope as the request's
// orders owner (orders.WithOwner). A request whose caller cannot be scoped
// (scope's error: an authorizer context naming no usable principal, or an
// anonymous caller where AUTH_MODE requires one) is answered 403
// idempotency-caller-unknown, and reaches nothing: no key is taken, no
// order is read or written.
func identifyCaller(scope func(*http.Request) (string, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner, err := scope(r)
		if err != nil {
			problem.Write(w, problem.Problem{
				Type: problem.Type(idemhttp.TypeCallerUnknown), Title: "Caller unknown", Status: http.StatusForbidden,
				Detail: "The caller could not be identified, so its keys and orders cannot be kept apart from other callers'.",
			})
			noteOutcome(r, idemhttp.OutcomeCallerUnknown, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(orders.WithOwner(r.Context(), owner)))
	})
}
