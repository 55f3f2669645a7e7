package orders

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
)

// idPrefix starts every order id.
const idPrefix = "ord_"

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var idPattern = regexp.MustCompile(`^ord_[a-z2-7]{26}$`)

// NewID returns a new order id: "ord_" and 128 random bits from crypto/rand
// as 26 lower-case base32 characters. It fails only if the system's random
// source does.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("orders: new id: %w", err)
	}
	return idPrefix + idEncoding.EncodeToString(b[:]), nil
}

// ValidID reports whether id has the form NewID produces. The read handler
// answers 404 for any other id without asking the store.
func ValidID(id string) bool { return idPattern.MatchString(id) }
