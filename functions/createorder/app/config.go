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
	EnvAuthMode         = "AUTH_MODE"
)

// Authentication modes (AUTH_MODE, the stack's AuthMode parameter).
const (
	// AuthJWT: the API requires a JWT authorizer (the default). A request
	// that reaches the function without an identified caller is refused.
	AuthJWT = "jwt"
	// AuthNone: the API has no authorizer (a demonstration deployment).
	// Anonymous callers are served, and all of them share one scope: one
	// key space and one owner of orders.
	AuthNone = "none"
)

// DefaultMode is the guard mode when IDEMPOTENCY_MODE is unset: Item,
// because creating an order has no side effect outside DynamoDB and its one
// write is a Put of a new item, which is exactly when Item is valid: the
// order carries its own idempotency record, so a create is one conditional
// PutItem (one write unit for a typical order, no transaction), and it
// measured best on every figure of a create and of a retry
// (BENCHMARKS.md). Optimistic (IDEMPOTENCY_MODE=optimistic) and Lease stay
// available; Lease is required once the handler gains a side effect outside
// DynamoDB. Records of Item mode live on the orders, those of the other
// modes in the idempotency table: switching between Item and another mode
// forgets the keys used before the switch (see README, "Changing the
// mode").
const DefaultMode = idem.Item

// EnvVars lists every variable ConfigFromEnv reads.
var EnvVars = []string{EnvOrdersTable, EnvIdempotencyTable, EnvIdempotencyTTL, EnvIdempotencyMode, EnvLogLevel, EnvAuthMode}

// Config is everything the function is configured with.
type Config struct {
	OrdersTable      string
	IdempotencyTable string
	// Retention is how long an idempotency key and its stored response are
	// remembered (the published policy: 24h by default). Any positive
	// duration works, even seconds: the guard keeps a request in progress
	// for its whole lease however short the retention (see idem.Config).
	Retention time.Duration
	// Mode is how POST /orders is guarded: idem.Item (DefaultMode),
	// idem.Optimistic or idem.Lease, each valid here because the create handler's
	// only side effect is its DynamoDB write, and Item because that write is
	// one Put of a new order whose id the handler draws from ddb.KeyRand
	// (Item keeps the record on the order's item, see Config.Tables).
	Mode     idem.Mode
	LogLevel string
	// AuthMode is AuthJWT (default) or AuthNone: whether a request without
	// an identified caller (the anonymous scope "") is served.
	AuthMode string
}

// ConfigFromEnv reads Config from the environment, with defaults orders,
// idempotency, 24h, DefaultMode (item), INFO and jwt. It fails on a
// retention that is not a positive Go duration, on a mode other than
// "lease", "optimistic" or "item", and on an auth mode other than "jwt" or
// "none".
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
		if d <= 0 {
			return Config{}, fmt.Errorf("app: %s=%q: the retention must be positive", EnvIdempotencyTTL, v)
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
	case "item":
		c.Mode = idem.Item
	default:
		return Config{}, fmt.Errorf("app: %s=%q: want lease, optimistic or item", EnvIdempotencyMode, m)
	}
	switch m := os.Getenv(EnvAuthMode); m {
	case "", AuthJWT:
		c.AuthMode = AuthJWT
	case AuthNone:
		c.AuthMode = AuthNone
	default:
		return Config{}, fmt.Errorf("app: %s=%q: want %s or %s", EnvAuthMode, m, AuthJWT, AuthNone)
	}
	return c, nil
}

// Tables returns the definitions of the service's tables under the
// configured names: the one description from which local tables, test tables
// and the template check are made. The orders table is an Item-mode table in
// every mode (TTL on idem.AttrItemTTL, which no order carries: only the
// record-only items of Item mode do), so that switching the mode needs no
// change to the table.
func (c Config) Tables() []ddb.Table {
	return []ddb.Table{
		idem.ItemTableDefinition(orders.TableDefinition(c.OrdersTable)),
		idem.TableDefinition(c.IdempotencyTable),
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
