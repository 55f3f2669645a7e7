// Package idemhttp is the HTTP face of the idempotency guard (package idem):
// a net/http middleware that makes a route idempotent under the
// Idempotency-Key request header, as draft-ietf-httpapi-idempotency-key-header
// describes it.
//
// What a client sees:
//
//   - The key is sent as a Structured Field String ("abc") or bare as an
//     sf-token (abc; a leading digit is allowed, so a bare UUID works, but
//     not a number such as 007, which must be quoted); both are the same key
//     (ParseKey gives the rules). A missing or invalid key
//     is 400, and is checked before anything is looked up.
//   - A request the route cannot understand (a Content-Type it does not
//     accept, 415; a body too large, 413; a JSON body that is malformed or,
//     with Options.RequireObject, not an object, 400) is refused before the
//     guard: the answer is the same in either guard mode and whatever the
//     key was used for before, and nothing is stored.
//   - The first request runs the handler and gets its response exactly as
//     written. A retry with the same key and an equivalent request (same
//     method, route, media type and canonical JSON body; see Fingerprint)
//     gets the stored status, headers and body byte for byte, plus
//     "Idempotent-Replayed: true", and the handler does not run again.
//   - A retry may say so with "Idempotency-Retry: ?1" (HeaderRetry): the
//     stored answer is then looked up before the handler runs, which makes
//     a replay cheaper; it binds the key to nothing else, and where the
//     handler's run would have failed, the stored answer is the answer.
//   - A key reused for a different request is 422; a key whose first request
//     is still running is 409 (or 425) with Retry-After.
//   - The handler's responses of status 500 and above (and 408, 413, 415,
//     425, 429, and problems of the types that mean "not understood") are
//     not stored (DefaultKeep; Options.Keep may decide otherwise): the
//     handler's DynamoDB writes are discarded with them and a retry runs
//     afresh. Other responses, client errors included, are stored for the
//     guard's retention period. None of the middleware's own problems is
//     stored.
//   - Keys are scoped by caller (Options.Scope, APIGatewayV2Scope): the same
//     key from two callers names two independent requests.
//
// Every error is an RFC 9457 problem+json document (package problem) with a
// type per kind of error; the Type constants list them with their statuses.
package idemhttp
