package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"
)

// holdProxy is a reverse proxy in front of DynamoDB Local that holds every
// TransactWriteItems request (a create's commit: order and idempotency
// record in one transaction) for a while before passing it on, and passes
// everything else on at once. It is the -hold flag: the key is taken (its
// lease written) at once, and a second request with the same key meets it
// in progress for the hold's length.
type holdProxy struct {
	URL string
	srv *http.Server
}

// startHoldProxy serves the proxy on a free 127.0.0.1 port until Close.
func startHoldProxy(endpoint string, hold time.Duration) (*holdProxy, error) {
	target, err := url.Parse(endpoint)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("-hold: DynamoDB endpoint %q is not a URL", endpoint)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &holdProxy{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "serve: -hold proxy:", err)
		}
	}()
	return p, nil
}

// Close stops the proxy; requests in flight are cut off.
func (p *holdProxy) Close() error { return p.srv.Close() }
