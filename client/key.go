package client

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
)

// MaxKeyLen is the longest Idempotency-Key the API accepts, in characters.
const MaxKeyLen = 255

// NewKey returns a new random (version 4) UUID in its canonical form
// ("3f0c4b1e-8d2a-4c57-9e1b-2f6a7d9c0b13"), from crypto/rand: the key for
// one intended order. Create makes one itself; a caller that must survive
// its own crash makes one with NewKey, stores it with the pending order
// before the first attempt, and passes it to CreateWithKey.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // never fails (crypto/rand.Read)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// CheckKey reports whether key is one the API accepts: 1 to MaxKeyLen
// printable ASCII characters (0x20-0x7E) without a comma. It returns nil or
// an error saying what is wrong.
func CheckKey(key string) error {
	switch {
	case key == "":
		return errors.New("the idempotency key is empty")
	case len(key) > MaxKeyLen:
		return errors.New("the idempotency key is longer than 255 characters")
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c < 0x20 || c > 0x7e:
			return errors.New("the idempotency key holds a character that is not printable ASCII")
		case c == ',':
			return errors.New("the idempotency key holds a comma")
		}
	}
	return nil
}

// keyHeader returns the Idempotency-Key header value that names key: key as
// an RFC 8941 Structured Field String ("3f0c...", with \" and \\ escaped),
// the form the IETF Idempotency-Key draft defines. The API reads it as key
// for every key CheckKey accepts, and as the same key as its bare form
// (3f0c...), which the API also accepts for sf-token-shaped keys only: keys
// sent bare by an earlier version of this client resume under the quoted
// form.
func keyHeader(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 2)
	b.WriteByte('"')
	for i := 0; i < len(key); i++ {
		if key[i] == '"' || key[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
	b.WriteByte('"')
	return b.String()
}
