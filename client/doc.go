// Package client is a Go client for the order API (api/openapi.yaml) that
// retries safely, so that a caller gets exactly one order however often its
// network fails.
//
// Create makes one Idempotency-Key (a UUID v4) per intended order and sends
// it (as the Structured Field string the IETF draft defines, "..."), with
// byte-identical bodies, on every attempt. The service runs the
// first request that reaches it and answers every later one with the stored
// outcome (Created.Replayed), so a retry after a lost answer returns the
// order that was made instead of making a second one. An attempt after one
// that may have reached the service (and every attempt of CreateWithKey)
// also carries "Idempotency-Retry: ?1", with which the service looks up the
// stored outcome before it runs anything: a cheaper replay, never another
// outcome.
//
//	c, err := client.New("https://abc123.execute-api.ap-southeast-2.amazonaws.com", client.Options{
//		Token: tokens.Current, // func(ctx) (string, error), called before every attempt
//	})
//	created, err := c.Create(ctx, client.OrderRequest{Sender: ..., Receiver: ..., Parcel: ...})
//	switch {
//	case err == nil:
//		// created.Order; created.Replayed says an earlier attempt had made it
//	case errors.Is(err, client.ErrNotRetryable):
//		// the API refused it (an invalid order, say: errors.As gives the
//		// *client.Error with its problem type and field errors) and no
//		// attempt can have made the order: nothing was created; a
//		// corrected order needs a new key, i.e. a new Create
//	case errors.Is(err, client.ErrGaveUp):
//		// the order may exist: attempts or ctx ran out, or an attempt was
//		// refused (a 401 for an expired token, say) after an earlier one
//		// may have made it. Fix what the error names, if anything, and
//		// resume with CreateWithKey and the Key of the *client.CallError;
//		// never with a new key
//	}
//
// # Nothing created, or the order may exist
//
// A create's error says which of the two it is, since only the first allows
// a new key. ErrNotRetryable means no attempt can have made the order:
// every attempt before the last never reached the API (its connection was
// refused, its host name did not resolve), and the last was refused or
// could not be sent; or the last answer is the API's outcome for the key
// itself (a 400 invalid-order bound to it, a 422 for a key used for a
// different request), which it gives only when no order was made with the
// key. Once an attempt may have made the order (it timed out, its
// connection failed after the request may have been sent, it was answered
// 408, 409, 425, 429 or 5xx, or its 2xx was not an order), any later
// refusal or local failure is ErrGaveUp: the client cannot know whether
// that attempt ran, so the key must be kept and, once the cause is fixed,
// the create resumed with it. CreateWithKey, whose key may have been sent
// by an earlier run, treats the key as used from its first attempt.
//
// # What is retried
//
// Network errors, attempts that time out (Options.AttemptTimeout), 408,
// 409 (the key is in use by an attempt still running, a lost commit, a
// write conflict), 425, 429 and 5xx (API Gateway's own 502/503/504 with
// {"message": ...} bodies included), with capped exponential backoff and
// full jitter, never sooner than a Retry-After (delay-seconds or an
// HTTP-date), at most Options.MaxAttempts times and never past the
// context's deadline. Never retried: 1xx, 3xx, and every other 4xx (400,
// 401, 403, 404, 405, 413, 415, 422, ...), 501, 505, 506, 508, 510, 511, and
// the two 500s that fail the same way every time (idempotent-response-too-
// large, idempotent-request-too-many-writes). A 422 idempotency-key-reused
// matches ErrKeyReused and says the key was reused. A 2xx whose body is not
// an order (cut short by a proxy, say) is retried with the same key: the
// API's replay carries the whole order.
//
// Every create request sent is an attempt: Go's transport, which would
// resend a request carrying an Idempotency-Key by itself when a reused
// connection fails, is kept from doing so, so that each resend is counted
// (Options.MaxAttempts), paced and reported (Options.OnRetry).
//
// # Surviving a crash of the caller
//
// Create's key lives in memory: if the process dies between an attempt that
// reached the service and the answer, a rerun with a new key would book a
// second delivery. A caller that must survive its own crashes makes the key
// first, stores it durably with the pending order, and only then sends:
//
//	key := client.NewKey()
//	if err := db.SavePending(ctx, orderRef, key, req); err != nil { // committed before the first attempt
//		return err
//	}
//	created, err := c.CreateWithKey(ctx, key, req)
//	if err == nil {
//		err = db.MarkBooked(ctx, orderRef, created.Order.ID)
//	}
//
// and, when it starts again, resumes every order still pending with its own
// key and request:
//
//	for _, p := range db.Pending(ctx) {
//		created, err := c.CreateWithKey(ctx, p.Key, p.Request) // Replayed if an attempt had got through
//		...
//	}
//
// Resume with the same request (the same OrderRequest value encodes to the
// same bytes), and within the service's retention, 24 hours by default:
// after that the key is forgotten and the request runs again. A different
// request with the same key is refused (ErrKeyReused). A pending order
// whose create ends in ErrGaveUp stays pending, whatever the cause: only
// ErrNotRetryable says it was not made, and only then may it be booked
// again under a new key (ExampleClient_CreateWithKey).
//
// # Errors
//
// Every error of Create, CreateWithKey and Get is a *CallError matching
// exactly one of ErrNotRetryable and ErrGaveUp with errors.Is (see above for
// what each says of a create's order). When the API answered, errors.As
// finds an *Error carrying the status and the RFC 9457 problem (Type,
// Title, Detail, Errors); branch on Type (the Type* constants), never on
// Title or Detail.
package client
