package idem

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// Attribute names of an idempotency record that other components (table
// definitions, templates, operators) need to know.
const (
	// AttrID is the partition key: RecordID(scope, key), never the raw key.
	AttrID = "id"
	// AttrExpiresAt is the TTL attribute: a Number, epoch seconds. The guard
	// enforces it in its conditions; TTL deletion is only clean-up.
	AttrExpiresAt = "expires_at"
)

// TableDefinition returns the definition of an idempotency table named name:
// partition key AttrID, TTL on AttrExpiresAt.
func TableDefinition(name string) ddb.Table {
	return ddb.Table{Name: name, PartitionKey: AttrID, TTLAttribute: AttrExpiresAt}
}

// RecordID returns the partition key of the record for (scope, key): the hex
// SHA-256 of a version tag, the length of scope, a separator, scope, and key.
// The length prefix makes the encoding unambiguous, so no choice of scope and
// key can collide with another caller's pair; the raw key is never stored.
func RecordID(scope, key string) string {
	h := sha256.New()
	h.Write([]byte("idem/v1\n"))
	h.Write([]byte(strconv.Itoa(len(scope))))
	h.Write([]byte{':'})
	h.Write([]byte(scope))
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
