package idemhttp

// Outcome says what the middleware did with one request, for logs and
// metrics (Options.OnOutcome). Its values are lower-case words fit for a log
// attribute or metric label. It is never sent to the client.
type Outcome string

// The outcomes, one per request.
const (
	OutcomeUnkeyed              Outcome = "unkeyed"                // Options.Optional and no key: the handler ran unguarded
	OutcomeStored               Outcome = "stored"                 // the handler ran and its response is stored for replay
	OutcomeReleased             Outcome = "released"               // the handler ran; by Options.Keep nothing is stored
	OutcomeReplayed             Outcome = "replayed"               // an earlier response was replayed; the handler did not run
	OutcomeKeyMissing           Outcome = "key_missing"            // 400 TypeKeyMissing
	OutcomeKeyInvalid           Outcome = "key_invalid"            // 400 TypeKeyInvalid
	OutcomeBodyMalformed        Outcome = "body_malformed"         // 400 TypeBodyMalformed
	OutcomeBodyTooLarge         Outcome = "body_too_large"         // 413 TypeBodyTooLarge
	OutcomeUnsupportedMediaType Outcome = "unsupported_media_type" // 415 TypeUnsupportedMediaType
	OutcomeCallerUnknown        Outcome = "caller_unknown"         // 403 TypeCallerUnknown
	OutcomeMismatch             Outcome = "mismatch"               // 422 TypeKeyReused
	OutcomeInProgress           Outcome = "in_progress"            // 409/425 TypeKeyInUse
	OutcomeCommitLost           Outcome = "commit_lost"            // 409 TypeCommitLost
	OutcomeWriteConflict        Outcome = "write_conflict"         // 409 TypeWriteConflict
	OutcomeResponseTooLarge     Outcome = "response_too_large"     // 500 TypeResponseTooLarge
	OutcomeTooManyWrites        Outcome = "too_many_writes"        // 500 TypeTooManyWrites
	OutcomeStoreError           Outcome = "store_error"            // 503 TypeStoreUnavailable
	OutcomePanic                Outcome = "panic"                  // 500 TypeInternal: the handler panicked
	OutcomeError                Outcome = "error"                  // 500 TypeInternal: any other failure
)
