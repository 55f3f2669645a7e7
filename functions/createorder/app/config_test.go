package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
)

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{name: "an empty environment gives the published defaults",
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, Mode: idem.Item, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "every variable is honoured",
			env:  map[string]string{EnvOrdersTable: "o", EnvIdempotencyTable: "i", EnvIdempotencyTTL: "72h", EnvIdempotencyMode: "Lease", EnvLogLevel: "debug", EnvAuthMode: "none"},
			want: Config{OrdersTable: "o", IdempotencyTable: "i", Retention: 72 * time.Hour, Mode: idem.Lease, LogLevel: "debug", AuthMode: AuthNone}},
		{name: "optimistic may be asked for by name",
			env:  map[string]string{EnvIdempotencyMode: "optimistic"},
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, Mode: idem.Optimistic, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "a retention that is not a duration is refused", env: map[string]string{EnvIdempotencyTTL: "1 day"}, wantErr: EnvIdempotencyTTL},
		{name: "a zero retention is refused", env: map[string]string{EnvIdempotencyTTL: "0s"}, wantErr: "positive"},
		{name: "a zero retention in hours is refused", env: map[string]string{EnvIdempotencyTTL: "0h"}, wantErr: "positive"},
		{name: "a negative retention is refused", env: map[string]string{EnvIdempotencyTTL: "-24h"}, wantErr: "positive"},
		{name: "a retention of a second, shorter than the lease, is accepted", env: map[string]string{EnvIdempotencyTTL: "1s"},
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: time.Second, Mode: idem.Item, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "a retention under a second is accepted", env: map[string]string{EnvIdempotencyTTL: "500ms"},
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 500 * time.Millisecond, Mode: idem.Item, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "the template's smallest retention, 1h, is accepted", env: map[string]string{EnvIdempotencyTTL: "1h"},
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: time.Hour, Mode: idem.Item, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "item, the default, may be asked for by name", env: map[string]string{EnvIdempotencyMode: "item"},
			want: Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, Mode: idem.Item, LogLevel: "INFO", AuthMode: AuthJWT}},
		{name: "an unknown mode is refused", env: map[string]string{EnvIdempotencyMode: "pessimistic"}, wantErr: EnvIdempotencyMode},
		{name: "an unknown auth mode is refused, not taken as none", env: map[string]string{EnvAuthMode: "off"}, wantErr: EnvAuthMode},
		{name: "auth modes are case-sensitive, as the template spells them", env: map[string]string{EnvAuthMode: "NONE"}, wantErr: EnvAuthMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range EnvVars {
				t.Setenv(name, tc.env[name])
			}
			got, err := ConfigFromEnv()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ConfigFromEnv() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		status  int
		outcome idemhttp.Outcome
		want    string
	}{
		{http.StatusCreated, idemhttp.OutcomeStored, "created"},
		{http.StatusBadRequest, idemhttp.OutcomeStored, "invalid"},
		{http.StatusServiceUnavailable, idemhttp.OutcomeReleased, "failed"},
		{http.StatusCreated, idemhttp.OutcomeReplayed, "replayed"},
		{http.StatusConflict, idemhttp.OutcomeInProgress, "conflict"},
		{http.StatusUnprocessableEntity, idemhttp.OutcomeMismatch, "mismatch"},
		{http.StatusBadRequest, idemhttp.OutcomeKeyMissing, "invalid"},
		{http.StatusServiceUnavailable, idemhttp.OutcomeStoreError, "unavailable"},
		{http.StatusOK, "", "found"},
		{http.StatusNotFound, "", "not_found"},
		{http.StatusMethodNotAllowed, "", "invalid"},
		{http.StatusInternalServerError, idemhttp.OutcomePanic, "failed"},
	} {
		if got := describe(tc.status, tc.outcome); got != tc.want {
			t.Errorf("describe(%d, %q) = %q, want %q", tc.status, tc.outcome, got, tc.want)
		}
	}
}
