package orders

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"regexp"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// idPrefix starts every order id.
const idPrefix = "ord_"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var idPattern = regexp.MustCompile(`^ord_[a-z2-7]{26}$`)

// NewID returns a new order id: "ord_" and 128 random bits from crypto/rand
// as 26 lower-case base32 characters. It fails only if the system's random
// source does.
func NewID() (string, error) { return NewIDFrom(rand.Reader) }

// NewIDFrom returns an order id made, as NewID's, from the first 16 bytes it
// reads from r; the same bytes give the same id. It fails only if r does.
func NewIDFrom(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("orders: new id: %w", err)
	}
	var id [len(idPrefix) + 26]byte // 26: the base32 digits of 128 bits
	copy(id[:], idPrefix)
	idEncoding.Encode(id[len(idPrefix):], b[:])
	return string(id[:]), nil
}

// newIDFor is the handler's default id source: NewIDFrom(ddb.KeyRand(ctx)),
// so that whoever owns the request's unit of work decides the randomness of
// the id of the order it writes (crypto/rand unless it does).
func newIDFor(ctx context.Context) (string, error) { return NewIDFrom(ddb.KeyRand(ctx)) }

// ValidID reports whether id has the form NewID produces. The read handler
// answers 404 for any other id without asking the store.
func ValidID(id string) bool { return idPattern.MatchString(id) }
