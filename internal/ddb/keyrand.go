package ddb

import (
	"context"
	"crypto/rand"
	"io"
)

type keyRandKey struct{}

// WithKeyRand returns a context whose KeyRand is r: the owner of a unit of
// work uses it to decide the keys of the new items written through that
// context, for example to make them the same for every retry of one request.
// r must be safe for concurrent use.
func WithKeyRand(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, keyRandKey{}, r)
}

// KeyRand returns the source of random bytes for the keys of new items that
// code writes through ctx: the reader a WithKeyRand gave ctx, else
// crypto/rand.Reader. Business code that makes a random key for an item it
// writes with Write draws the key's bytes from it, and from nowhere else, so
// whoever owns ctx can reproduce the key; it cannot tell which source it got.
func KeyRand(ctx context.Context) io.Reader {
	if r, ok := ctx.Value(keyRandKey{}).(io.Reader); ok {
		return r
	}
	return rand.Reader
}
