// Command token prints a bearer token that `make local` accepts:
//
//	make -s token SUB=alice                          # scopes orders/create orders/read
//	make -s token SUB=bob SCOPES="orders/read"
//	TOKEN=$(make -s token SUB=alice)
//	curl -H "Authorization: Bearer $TOKEN" ...
//
// The token is an RS256 JWT from the local identity provider (local/jwtauth):
// signed with the key pair in -key (made there if missing, the same file
// `make local` uses), for subject -sub, valid for -ttl. Two subjects are two
// callers: their idempotency keys and orders are kept apart.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/parcelhq/orderservice/local/jwtauth"
)

func main() {
	sub := flag.String("sub", "", "the caller: the token's subject (required)")
	scopes := flag.String("scopes", "orders/create orders/read", "the token's scopes, space-separated")
	ttl := flag.Duration("ttl", jwtauth.DefaultTTL, "how long the token is valid")
	key := flag.String("key", jwtauth.KeyFile(), "the local signing key pair (env LOCAL_JWT_KEY)")
	flag.Parse()
	if *sub == "" {
		fmt.Fprintln(os.Stderr, "token: name the caller: make -s token SUB=<name> [SCOPES=\"orders/create orders/read\"]")
		os.Exit(2)
	}
	k, err := jwtauth.LoadOrCreateKey(*key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
	tok, err := k.Mint(*sub, strings.Fields(*scopes), *ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}
