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
	// Mode is how POST /orders is guarded: idem.Lease (default) or
	// idem.Optimistic, which is valid here because the create handler's
	// only side effect is its DynamoDB write.
	Mode     idem.Mode
	LogLevel string
	// AuthMode is AuthJWT (default) or AuthNone: whether a request without
	// an identified caller (the anonymous scope "") is served.
	AuthMode string
}

// ConfigFromEnv reads Config from the environment, with defaults orders,
// idempotency, 24h, lease, INFO and jwt. It fails on a retention that is not
// a positive Go duration, on a mode other than "lease" or "optimistic", and
// on an auth mode other than "jwt" or "none".
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
	case "", "lease":
		c.Mode = idem.Lease
	case "optimistic":
		c.Mode = idem.Optimistic
	default:
		return Config{}, fmt.Errorf("app: %s=%q: want lease or optimistic", EnvIdempotencyMode, m)
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
