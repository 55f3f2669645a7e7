package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond // unsorted on purpose
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]time.Duration{3, 1, 2}, 50); got != 2 {
		t.Errorf("median of 3, 1, 2 = %v, want 2", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
}

func TestCallsSince(t *testing.T) {
	c := newCallCounter()
	c.ops["PutItem"] = 3
	before := c.snapshot()
	c.ops["PutItem"] += 2
	c.ops["TransactWriteItems"]++
	c.attempts = 4
	d := c.snapshot().since(before)
	if d.ops["PutItem"] != 2 || d.ops["TransactWriteItems"] != 1 || d.total() != 3 || d.attempts != 4 {
		t.Errorf("since = %+v", d)
	}
	var sum calls
	sum.add(d)
	sum.add(d)
	if sum.total() != 6 || sum.attempts != 8 {
		t.Errorf("add twice = %+v", sum)
	}
	if got := perRequest(3, 2); got != "1.500" {
		t.Errorf("perRequest(3, 2) = %q", got)
	}
	if got := perRequest(4, 2); got != "2" {
		t.Errorf("perRequest(4, 2) = %q", got)
	}
}
