package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/parcelhq/orderservice/client"
)

// pendingStore stands for the caller's own durable storage (a database
// table of orders it has yet to book).
type pendingStore interface {
	SavePending(ctx context.Context, ref, key string, req client.OrderRequest) error
	MarkBooked(ctx context.Context, ref, orderID string) error
	Pending(ctx context.Context) ([]pendingOrder, error)
}

type pendingOrder struct {
	Ref, Key string
	Request  client.OrderRequest
}

// A caller that may crash stores the key with the pending order before the
// first attempt, so that a restarted process resumes with the same key and
// gets the order the first one made instead of a second one.
func ExampleClient_CreateWithKey() {
	ctx := context.Background()
	var db pendingStore // the caller's storage
	c, err := client.New("http://127.0.0.1:3000", client.Options{Token: client.StaticToken("TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	book := func(ref, key string, req client.OrderRequest) error {
		created, err := c.CreateWithKey(ctx, key, req)
		switch {
		case errors.Is(err, client.ErrGaveUp):
			// The order may exist: still pending, the next run resumes it
			// with the same key (once a new token, say, is to hand).
			return err
		case err != nil: // ErrNotRetryable: nothing was created
			return fmt.Errorf("order %s refused, fix it and book it under a new key: %w", ref, err)
		}
		return db.MarkBooked(ctx, ref, created.Order.ID)
	}

	// A new order: key first, stored, then sent.
	req := client.OrderRequest{ /* sender, receiver, parcel */ }
	key := client.NewKey()
	if err := db.SavePending(ctx, "ref-42", key, req); err != nil {
		log.Fatal(err)
	}
	if err := book("ref-42", key, req); err != nil {
		log.Print(err)
	}

	// On start-up: resume every order a previous run left pending.
	pending, err := db.Pending(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range pending {
		if err := book(p.Ref, p.Key, p.Request); err != nil {
			log.Print(err)
		}
	}
}

func ExampleClient_Create() {
	c, err := client.New("http://127.0.0.1:3000", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	created, err := c.Create(context.Background(), client.OrderRequest{ /* sender, receiver, parcel */ })
	var apiErr *client.Error
	switch {
	case err == nil:
		fmt.Println(created.Order.ID, created.Order.Price.Amount, created.Replayed)
	case errors.As(err, &apiErr) && apiErr.Type == client.TypeInvalidOrder:
		for _, f := range apiErr.Errors {
			fmt.Println(f.Pointer, f.Detail)
		}
	default:
		log.Print(err)
	}
}
