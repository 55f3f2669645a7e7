package app

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders"
)

// Environment variables the function reads. template.yaml sets them and a
// test checks that it sets no other (DYNAMODB_ENDPOINT, ddb.EndpointEnv, is
// for local runs only and read by ddb.NewClient).
const (
	EnvOrdersTable      = "ORDERS_TABLE"
	EnvIdempotencyTable = "IDEMPOTENCY_TABLE"
	EnvIdempotencyTTL   = "IDEMPOTENCY_TTL"
	EnvIdempotencyMode  = "IDEMPOTENCY_MODE"
	EnvLogLevel         = "LOG_LEVEL"
)

// MinRetention is the shortest IDEMPOTENCY_TTL ConfigFromEnv accepts. A
// record must outlive the lease that guards it: were the retention shorter
// than the lease (idem.DefaultLease, 30s, plus idem.DefaultClockSkew), an
// in-progress record would count as expired, and be taken over by a
// duplicate, while its holder is still running, so one key could create two
// orders. One minute leaves that margin; the template's smallest allowed
// IdempotencyRetentionHours (1) is well above it.
const MinRetention = time.Minute

// DefaultMode is the guard mode when IDEMPOTENCY_MODE is unset: Optimistic,
// because creating an order has no side effect outside DynamoDB (its one
// write joins the guard's transaction), which is exactly when Optimistic is
// valid, and it measured better than Lease on every figure of a create
// (BENCHMARKS.md: one round trip instead of two, half the miss latency, more
// creates per second, fewer DynamoDB write units). Lease stays available
// (IDEMPOTENCY_MODE=lease) and is required once the handler gains a side
// effect outside DynamoDB.
const DefaultMode = idem.Optimistic

// EnvVars lists every variable ConfigFromEnv reads.
var EnvVars = []string{EnvOrdersTable, EnvIdempotencyTable, EnvIdempotencyTTL, EnvIdempotencyMode, EnvLogLevel}

// Config is everything the function is configured with.
type Config struct {
	OrdersTable      string
	IdempotencyTable string
	// Retention is how long an idempotency key and its stored response are
	// remembered (the published policy: 24h by default).
	Retention time.Duration
	// Mode is how POST /orders is guarded: idem.Optimistic (DefaultMode),
	// valid here because the create handler's only side effect is its
	// DynamoDB write, or idem.Lease.
	Mode     idem.Mode
	LogLevel string
}

// ConfigFromEnv reads Config from the environment, with defaults orders,
// idempotency, 24h, DefaultMode (optimistic) and INFO. It fails on a retention that is not a Go
// duration or is shorter than MinRetention, and on a mode other than "lease"
// or "optimistic".
func ConfigFromEnv() (Config, error) {
	c := Config{
		OrdersTable:      envOr(EnvOrdersTable, "orders"),
		IdempotencyTable: envOr(EnvIdempotencyTable, "idempotency"),
		Retention:        idem.DefaultRetention,
		LogLevel:         envOr(EnvLogLevel, "INFO"),
	}
	if v := os.Getenv(EnvIdempotencyTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("app: %s=%q is not a Go duration (e.g. 24h)", EnvIdempotencyTTL, v)
		}
		if d < MinRetention {
			return Config{}, fmt.Errorf("app: %s=%q is below the minimum retention of %v: a record must outlive the lease that guards it", EnvIdempotencyTTL, v, MinRetention)
		}
		c.Retention = d
	}
	switch m := strings.ToLower(os.Getenv(EnvIdempotencyMode)); m {
	case "":
		c.Mode = DefaultMode
	case "lease":
		c.Mode = idem.Lease
	case "optimistic":
		c.Mode = idem.Optimistic
	default:
		return Config{}, fmt.Errorf("app: %s=%q: want lease or optimistic", EnvIdempotencyMode, m)
	}
	return c, nil
}

// Tables returns the definitions of the service's tables under the
// configured names: the one description from which local tables, test tables
// and the template check are made.
func (c Config) Tables() []ddb.Table {
	return []ddb.Table{
		orders.TableDefinition(c.OrdersTable),
		idem.TableDefinition(c.IdempotencyTable),
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
