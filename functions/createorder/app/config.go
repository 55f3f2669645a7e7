package app

import (
	"fmt"
	"os"
	"time"
)

// Environment variables the function reads. template.yaml sets them and a
// test checks that it sets no other.
const (
	EnvOrdersTable      = "ORDERS_TABLE"
	EnvIdempotencyTable = "IDEMPOTENCY_TABLE"
	EnvIdempotencyTTL   = "IDEMPOTENCY_TTL"
	EnvLogLevel         = "LOG_LEVEL"
)

// Config is everything the function is configured with.
type Config struct {
	OrdersTable      string
	IdempotencyTable string
	Retention        time.Duration // how long an idempotency key is remembered
	LogLevel         string
}

// ConfigFromEnv reads Config from the environment, with defaults orders,
// idempotency, 24h and INFO. It fails on a retention that is not a positive
// Go duration.
func ConfigFromEnv() (Config, error) {
	c := Config{
		OrdersTable:      envOr(EnvOrdersTable, "orders"),
		IdempotencyTable: envOr(EnvIdempotencyTable, "idempotency"),
		Retention:        24 * time.Hour,
		LogLevel:         envOr(EnvLogLevel, "INFO"),
	}
	if v := os.Getenv(EnvIdempotencyTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("app: %s=%q is not a positive Go duration (e.g. 24h)", EnvIdempotencyTTL, v)
		}
		c.Retention = d
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
