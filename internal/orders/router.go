package orders

import (
	"net/http"
	"net/url"
	"strings"
)

// NewRouter returns the order API's router: POST /orders goes to create,
// GET /orders/{order_id} to get (with the path value order_id set, unescaped).
// Another method on one of those paths is 405 method-not-allowed with an
// Allow header; any other path is 404 not-found. Both are problem+json.
func NewRouter(create, get http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		switch {
		case path == "/orders":
			if r.Method != http.MethodPost {
				methodNotAllowed(w, http.MethodPost)
				return
			}
			create.ServeHTTP(w, r)
			return
		case strings.HasPrefix(path, "/orders/"):
			seg := strings.TrimPrefix(path, "/orders/")
			id, err := url.PathUnescape(seg)
			if seg == "" || strings.Contains(seg, "/") || err != nil {
				break
			}
			if r.Method != http.MethodGet {
				methodNotAllowed(w, http.MethodGet)
				return
			}
			r.SetPathValue("order_id", id)
			get.ServeHTTP(w, r)
			return
		}
		writeProblem(w, http.StatusNotFound, SlugNotFound, "Not found", "no such resource")
	})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeProblem(w, http.StatusMethodNotAllowed, SlugMethodNotAllowed, "Method not allowed",
		"this resource allows "+allow)
}
