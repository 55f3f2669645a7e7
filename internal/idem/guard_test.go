package idem_test

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
)

func TestRecordID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		a, b       [2]string
		wantSameID bool
	}{
		{"moving a character between scope and key gives another id", [2]string{"ab", "c"}, [2]string{"a", "bc"}, false},
		{"the empty scope differs from a scope holding the key", [2]string{"", "k"}, [2]string{"k", ""}, false},
		{"the same pair gives the same id", [2]string{"t", "k"}, [2]string{"t", "k"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := idem.RecordID(c.a[0], c.a[1]), idem.RecordID(c.b[0], c.b[1])
			if (a == b) != c.wantSameID {
				t.Fatalf("RecordID%v = %s, RecordID%v = %s", c.a, a, c.b, b)
			}
			if _, err := hex.DecodeString(a); err != nil || len(a) != 64 {
				t.Fatalf("id %q is not a hex SHA-256", a)
			}
		})
	}
}

func TestObserver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	var ev events
	g := e.guard(idem.Config{Observer: ev.observe})
	r := req(uniqueKey(t), "fp")
	var runs atomic.Int32
	_, _ = g.Do(context.Background(), r, func(context.Context) (idem.Outcome, error) { return idem.Outcome{}, errBoom })
	mustDo(t, g, r, respond(&runs, []byte("x")))
	mustDo(t, g, r, respond(&runs, nil))
	r2 := r
	r2.Fingerprint = "other"
	_, _ = g.Do(context.Background(), r2, respond(&runs, nil))
	want := []idem.EventKind{idem.Miss, idem.Released, idem.Miss, idem.Committed, idem.Hit, idem.Mismatch}
	if !slices.Equal(ev.kinds, want) {
		t.Fatalf("events %v, want %v", ev.kinds, want)
	}
	for _, e := range ev.list {
		if e.ID != idem.RecordID(r.Scope, r.Key) || strings.Contains(e.ID, r.Key) {
			t.Fatalf("event %v carries id %q, want the record id", e.Kind, e.ID)
		}
	}
	if got := idem.LeaseTakeover.String(); got != "lease_takeover" {
		t.Fatalf("LeaseTakeover.String() = %q", got)
	}
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(mode.String()+": a missing table is ErrStore wrapping DynamoDB's error", func(t *testing.T) {
			t.Parallel()
			var ev events
			g := idem.New(e.client, idem.Config{Table: "no-such-table-" + e.table, Mode: mode, Observer: ev.observe})
			var runs atomic.Int32
			_, err := g.Do(context.Background(), req(uniqueKey(t), "fp"), respond(&runs, []byte("x")))
			var notFound *types.ResourceNotFoundException
			if !errors.Is(err, idem.ErrStore) || !errors.As(err, &notFound) {
				t.Fatalf("err = %v, want ErrStore wrapping ResourceNotFoundException", err)
			}
			if mode == idem.Lease && runs.Load() != 0 {
				t.Fatal("fn ran although the lease was never acquired")
			}
			if ev.count(idem.StoreError) != 1 {
				t.Fatalf("StoreError events = %d, want 1", ev.count(idem.StoreError))
			}
		})
	}
	t.Run("a context already ended runs nothing", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var runs atomic.Int32
		if _, err := e.guard(idem.Config{}).Do(ctx, req(uniqueKey(t), "fp"), respond(&runs, nil)); !errors.Is(err, context.Canceled) || runs.Load() != 0 {
			t.Fatalf("err = %v runs = %d, want context.Canceled and no run", err, runs.Load())
		}
	})
}
