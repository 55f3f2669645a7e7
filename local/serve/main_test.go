package main_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "serve-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles local/serve once per test binary, into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "serve")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// env returns the environment without the variables serve reads, plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case ddb.EndpointEnv, "API_ADDR", "ORDERS_TABLE", "IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL", "IDEMPOTENCY_MODE", "LOG_LEVEL":
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

var ready = regexp.MustCompile(`serve: listening on (http://127\.0\.0\.1:\d+)`)

func TestServe(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // fails with instructions when DynamoDB Local is not configured
	bin := build(t)

	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	ordersTable := "serve-orders-" + hex.EncodeToString(suffix[:])
	idemTable := "serve-idem-" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range []string{ordersTable, idemTable} {
			if err := ddb.DeleteTable(ctx, client, name); err != nil {
				t.Error(err)
			}
		}
	})

	// -hold gives the conflict subtest a create that is reliably in progress:
	// it holds its key this long once its record is written.
	cmd := exec.Command(bin, "-hold=3s")
	cmd.Env = env(ddb.EndpointEnv+"="+ddbtest.Endpoint(), "API_ADDR=127.0.0.1:0",
		"ORDERS_TABLE="+ordersTable, "IDEMPOTENCY_TABLE="+idemTable, "LOG_LEVEL=ERROR",
		"IDEMPOTENCY_MODE=lease") // the -hold conflict needs the key taken before the handler runs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once it has exited

	// Wait, bounded, for the ready line; keep draining stderr afterwards.
	base := make(chan string, 1)
	var logTail strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logTail.WriteString(sc.Text() + "\n")
			if m := ready.FindStringSubmatch(sc.Text()); m != nil && !sent {
				base <- m[1]
				sent = true
			}
		}
		exited <- cmd.Wait()
	}()
	var url string
	select {
	case url = <-base:
	case err := <-exited:
		t.Fatalf("serve exited before it was ready: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not print its ready line within 90s")
	}

	httpc := &http.Client{Timeout: 15 * time.Second}
	var location string
	t.Run("a new orderstest.JSON is created through the emulated API Gateway", func(t *testing.T) {
		req, _ := http.NewRequest("POST", url+"/orders", strings.NewReader(orderstest.JSON))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "serve-test-"+hex.EncodeToString(suffix[:]))
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d, body %s", resp.StatusCode, body)
		}
		var o struct {
			OrderID string `json:"order_id"`
			Status  string `json:"status"`
		}
		if err := json.Unmarshal(body, &o); err != nil || o.OrderID == "" || o.Status != "booked" {
			t.Fatalf("body %s: %v", body, err)
		}
		location = resp.Header.Get("Location")
		if !strings.HasSuffix(location, "/orders/"+o.OrderID) {
			t.Errorf("Location = %q, want it to end in /orders/%s", location, o.OrderID)
		}
	})
	t.Run("the created orderstest.JSON can be read back", func(t *testing.T) {
		if location == "" {
			t.Skip("no orderstest.JSON was created")
		}
		target := location
		if strings.HasPrefix(target, "/") {
			target = url + target
		}
		resp, err := httpc.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %d %s", target, resp.StatusCode, b)
		}
	})
	t.Run("with -hold, a second request with the same key meets the first in progress: 409 with Retry-After", func(t *testing.T) {
		key := "serve-hold-" + hex.EncodeToString(suffix[:])
		post := func() (*http.Response, error) {
			req, _ := http.NewRequest("POST", url+"/orders", strings.NewReader(orderstest.JSON))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			return httpc.Do(req)
		}
		first := make(chan int, 1)
		go func() {
			resp, err := post()
			if err != nil {
				first <- 0
				return
			}
			resp.Body.Close()
			first <- resp.StatusCode
		}()
		// Send the second only once the first holds the key: its record is
		// in the idempotency table (it then holds it for the -hold time).
		waitForRecord(t, client, idemTable, idem.RecordID("", key))
		resp, err := post()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("Retry-After") == "" {
			t.Errorf("second request: %d, Retry-After %q; want 409 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if code := <-first; code != http.StatusCreated {
			t.Errorf("first request: %d, want 201", code)
		}
	})
	t.Run("an unknown path reaches the function through $default and gets problem+json 404", func(t *testing.T) {
		resp, err := httpc.Get(url + "/nope")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})

	t.Run("SIGINT shuts it down promptly with exit status 0", func(t *testing.T) {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit: %v\nstderr:\n%s", err, logTail.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve still running 10s after SIGINT")
		}
	})
}

// waitForRecord polls table with consistent reads, every 20 ms for up to
// 30 s, until the idempotency record id exists.
func waitForRecord(t *testing.T, client *dynamodb.Client, table, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error // of a read that failed before the deadline
	for {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: id}},
		})
		switch {
		case err == nil && out.Item != nil:
			return
		case ctx.Err() != nil:
			t.Fatalf("record %s did not appear in %s within 30s (last read error: %v)", id, table, lastErr)
		case err != nil:
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

func TestServeRefusesToRunWithoutDynamoDBLocal(t *testing.T) {
	t.Parallel()
	bin := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env("API_ADDR=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("serve without %s: err = %v, want a non-zero exit\n%s", ddb.EndpointEnv, err, out)
	}
	if !strings.Contains(string(out), ddb.EndpointEnv) || !strings.Contains(string(out), "make local") {
		t.Errorf("message does not say what to do: %s", out)
	}
}
