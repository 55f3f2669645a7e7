// Package ddbtest gives tests a real DynamoDB (DynamoDB Local, or whatever
// DYNAMODB_ENDPOINT names) and tables of their own on it.
//
// Integration tests are not optional in this project: when DYNAMODB_ENDPOINT
// is unset or the endpoint does not answer, the tests that need it fail with
// a message that says how to run them (`make test`), they do not skip.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/internal/ddb"
)

var (
	clientOnce sync.Once
	client     *dynamodb.Client
	clientErr  error
)

// Client returns a client for the test DynamoDB, shared by the tests of the
// process. It fails t when DYNAMODB_ENDPOINT is unset or the client cannot be
// made.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	clientOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if Endpoint() == "" {
			return
		}
		client, clientErr = ddb.NewClient(ctx)
	})
	if Endpoint() == "" {
		t.Fatalf("ddbtest: %s is not set; run the tests with `make test`, which starts DynamoDB Local", ddb.EndpointEnv)
	}
	if clientErr != nil {
		t.Fatalf("ddbtest: %v", clientErr)
	}
	return client
}

// Endpoint returns the DynamoDB endpoint the tests use, or "" when none is
// configured.
func Endpoint() string { return os.Getenv(ddb.EndpointEnv) }

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// Table creates a table shaped like def, under a name unique to this test
// run, and deletes it when the test ends. It returns def with that name.
// Tests that use it may run in parallel with any other test.
func Table(t testing.TB, def ddb.Table) ddb.Table {
	t.Helper()
	c := Client(t)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 180 {
		name = name[:180]
	}
	def = def.WithName(def.Name + "-" + name + "-" + hex.EncodeToString(suffix[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ddb.EnsureTable(ctx, c, def); err != nil {
		t.Fatalf("ddbtest: %v (is DynamoDB Local running at %s?)", err, Endpoint())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ddb.DeleteTable(ctx, c, def.Name); err != nil {
			t.Errorf("ddbtest: %v", err)
		}
	})
	return def
}
