package orders

import "context"

type ownerKey struct{}

// WithOwner returns a copy of ctx that names owner as the caller a request
// runs for. The handlers read it: Create records it on the order it books,
// and Get finds an order only for the owner recorded on it. owner is opaque
// here: the edge that authenticates the caller derives it (the service uses
// its idempotency key scope, so one caller has one owner everywhere).
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// OwnerFrom returns the owner WithOwner put in ctx, or "" when there is
// none. "" is an owner like any other: orders booked without one can be read
// only without one.
func OwnerFrom(ctx context.Context) string {
	o, _ := ctx.Value(ownerKey{}).(string)
	return o
}
