// Package orders books parcel deliveries: it validates an order request,
// prices it, stores the order in DynamoDB and serves it over HTTP.
//
// It knows nothing about Lambda or idempotency. Its one write goes through
// ddb.Write, so when the request context carries a ddb.UnitOfWork (put there
// by whatever guards the request) the write joins that unit's transaction.
//
// # Ownership
//
// Every order records the owner of the request that booked it (WithOwner,
// put in the request context by whatever authenticated the caller), and
// GET /orders/{order_id} answers an order only to that owner: anyone else
// gets the same 404 as for an id that does not exist.
//
// # HTTP decisions
//
//   - Content-Type must be application/json; parameters are allowed, but a
//     charset, if given, must be utf-8. A missing Content-Type is refused
//     like any other: 415 unsupported-media-type.
//   - A body over MaxBodyBytes (64 KiB) is refused with 413 body-too-large.
//   - A body that is not one JSON object (empty, syntax error, invalid UTF-8,
//     an array or scalar at the top, trailing data after the object) is
//     400 malformed-body, without field errors: nothing can be pointed at.
//   - A well-formed JSON object that breaks any rule is 400 invalid-order, and
//     its "errors" member lists every bad field at once, each with an RFC 6901
//     pointer into the request body.
//   - JSON null is a wrong type for every field, including optional ones.
//
// # Numbers
//
// Weights are kept in whole grams and dimensions in whole millimetres
// (Grams, Millimetres), so a request may give weight_kg with at most three
// decimal places and a dimension in cm with at most one. They are rendered
// back as the shortest decimal (2.500 kg is rendered 2.5), which is what the
// create response and every later read show.
package orders
