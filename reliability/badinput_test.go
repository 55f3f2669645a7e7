package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
)

// badCase is one malformed request and what the service must answer.
type badCase struct {
	name   string
	keys   []string // raw Idempotency-Key field values, "{KEY}" replaced by a fresh valid key; nil: one fresh valid key
	noKey  bool     // send no Idempotency-Key at all
	ctype  string   // Content-Type; "" sends none
	body   []byte
	status int
	slug   string // problem type slug
	stored bool   // the outcome is stored under the key (the guard ran the handler)
	// frontDoor: the HTTP server in front of the function (net/http here,
	// API Gateway in AWS) refuses the request with a plain 400 before the
	// function runs: a header value with a control character or DEL.
	frontDoor bool
}

func badCorpus() []badCase {
	valid := []byte(orderBody("bad input"))
	json := "application/json"
	withParcel := func(parcel string) []byte {
		return []byte(strings.Replace(string(valid), `"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"bad input"}`, `"parcel":`+parcel, 1))
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	shallow := strings.Repeat("[", 10) + strings.Repeat("]", 10)
	keyInvalid := func(name string, values ...string) badCase {
		return badCase{name: "a key " + name + " is refused before the guard", keys: values, ctype: json, body: valid,
			status: 400, slug: idemhttp.TypeKeyInvalid}
	}
	bodyMalformed := func(name string, body []byte) badCase {
		return badCase{name: "a body " + name + " is refused before the guard", ctype: json, body: body,
			status: 400, slug: idemhttp.TypeBodyMalformed}
	}
	mediaType := func(name, ctype string) badCase {
		return badCase{name: "a content type " + name + " is refused before the guard", ctype: ctype, body: valid,
			status: 415, slug: idemhttp.TypeUnsupportedMediaType}
	}
	invalidOrder := func(name string, body []byte) badCase {
		return badCase{name: "a well-formed body " + name + " is an invalid order, stored under its key", ctype: json, body: body,
			status: 400, slug: orders.SlugInvalidOrder, stored: true}
	}
	return []badCase{
		{name: "a request without a key is refused before the guard", noKey: true, ctype: json, body: valid, status: 400, slug: idemhttp.TypeKeyMissing},
		keyInvalid("that is the empty sf-string", `""`),
		keyInvalid("of 256 characters", strings.Repeat("k", 256)),
		keyInvalid("of 256 characters in quotes", `"`+strings.Repeat("k", 256)+`"`),
		{name: "a key with a control character is refused at the front door", keys: []string{"ab\x01cd"}, ctype: json, body: valid, status: 400, frontDoor: true},
		keyInvalid("with a tab inside the quotes", "\"ab\tcd\""),
		{name: "a key with DEL is refused at the front door", keys: []string{"ab\x7fcd"}, ctype: json, body: valid, status: 400, frontDoor: true},
		keyInvalid("with non-ASCII UTF-8", "clé-123"),
		keyInvalid("with a Latin-1 byte", "cl\xe9-123"),
		keyInvalid("with an unterminated sf-string", `"abc`),
		keyInvalid("with a bad escape in the sf-string", `"ab\c"`),
		keyInvalid("with text after the sf-string", `"abc"x`),
		keyInvalid("that is an sf-list", `"a", "b"`),
		keyInvalid("with sf-parameters", `"abc";x=1`),
		keyInvalid("with a comma", `a,b`),
		keyInvalid("with a bare space", `ab cd`),
		keyInvalid("with a bare backslash", `ab\cd`),
		keyInvalid("that is bare with sf-parameters", `abc;x=1`),
		keyInvalid("that is a bare sf-boolean", `?1`),
		keyInvalid("that is a bare sf-byte-sequence", `:YWJj:`),
		keyInvalid("that is bare with a character outside the sf-token grammar", `a{b}`),
		keyInvalid("that is a bare sf-integer with leading zeros (a proxy could pass it on as 7)", `007`),
		keyInvalid("that is a bare sf-decimal", `1.50`),
		keyInvalid("sent in two header fields", "{KEY}", "{KEY}x"),
		bodyMalformed("that is truncated JSON", valid[:len(valid)/2]),
		bodyMalformed("that is empty", nil),
		bodyMalformed("nested 100 deep", []byte(`{"sender":`+deep+`}`)),
		bodyMalformed("with a duplicate member", []byte(`{"sender":{},"sender":{}}`)),
		bodyMalformed("with a duplicate member deep inside", withParcel(`{"weight_kg":1,"weight_kg":2}`)),
		bodyMalformed("that is not UTF-8", bytes.Replace(valid, []byte("bad input"), []byte("bad \xff input"), 1)),
		bodyMalformed("with trailing data", append(append([]byte{}, valid...), []byte(" {}")...)),
		bodyMalformed("with a byte-order mark", append([]byte("\xef\xbb\xbf"), valid...)),
		bodyMalformed("with NaN", withParcel(`{"weight_kg":NaN}`)),
		bodyMalformed("with a raw control character in a string", bytes.Replace(valid, []byte("bad input"), []byte("bad\x01input"), 1)),
		invalidOrder("with a number too big for any float", withParcel(`{"weight_kg":1e400,"length_cm":30,"width_cm":20,"height_cm":10}`)),
		invalidOrder("with a 400-digit integer", withParcel(`{"weight_kg":`+strings.Repeat("9", 400)+`,"length_cm":30,"width_cm":20,"height_cm":10}`)),
		invalidOrder("with a string for a number", withParcel(`{"weight_kg":"2.5","length_cm":30,"width_cm":20,"height_cm":10}`)),
		invalidOrder("with null for a field", withParcel(`{"weight_kg":null,"length_cm":30,"width_cm":20,"height_cm":10}`)),
		invalidOrder("with an unknown member", []byte(strings.Replace(string(valid), `{"sender"`, `{"coupon":"FREE","sender"`, 1))),
		invalidOrder("with nesting within the limit in an unknown member", []byte(strings.Replace(string(valid), `{"sender"`, `{"x":`+shallow+`,"sender"`, 1))),
		invalidOrder("with a negative weight", withParcel(`{"weight_kg":-1,"length_cm":30,"width_cm":20,"height_cm":10}`)),
		invalidOrder("with a postcode outside the state", []byte(strings.Replace(string(valid), `"postcode":"2000"`, `"postcode":"3000"`, 1))),
		bodyMalformed("that is a JSON array", []byte(`[1,2]`)),
		bodyMalformed("that is an empty JSON array", []byte(`[]`)),
		bodyMalformed("that is JSON null", []byte(`null`)),
		bodyMalformed("that is a JSON string", []byte(`"order"`)),
		bodyMalformed("that is the order inside an array", []byte(`[`+string(valid)+`]`)),
		mediaType("text/plain", "text/plain"),
		mediaType("missing", ""),
		mediaType("application/json in latin1", "application/json; charset=iso-8859-1"),
		mediaType("application/vnd.api+json", "application/vnd.api+json"),
		mediaType("that does not parse", "application/json; charset"),
		{name: "a 100 KB body is refused before the guard", ctype: json, body: padded(100 << 10),
			status: 413, slug: idemhttp.TypeBodyTooLarge},
		{name: "a 10 MB body is refused before the guard", ctype: json, body: padded(10<<20 - 1),
			status: 413, slug: idemhttp.TypeBodyTooLarge},
	}
}

// padded returns a JSON object of exactly n bytes.
func padded(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// TestReliabilityBadInput sends a corpus of malformed requests to the real
// service, in each guard mode. It proves each is answered with its
// documented 4xx and problem type as application/problem+json, that no order
// is created, and that exactly the answers app.Policy says are stored leave
// an idempotency record: requests refused before the order was read (key,
// Content-Type, size, a body that is not one JSON object) leave none, so the
// key stays free for the fixed request; an invalid order is stored by design
// (replayed, and a corrected body under the same key is 422 key-reused).
func TestReliabilityBadInput(t *testing.T) {
	corpus := badCorpus()
	if len(corpus) < 30 {
		t.Fatalf("corpus of %d requests, want at least 30", len(corpus))
	}
	for _, c := range corpus {
		if c.frontDoor {
			continue
		}
		if a, ok := app.PolicyFor(c.status, c.slug); !ok || a.Stored != c.stored {
			t.Errorf("%s: %d %s stored=%v, but app.Policy says %+v (listed: %v)", c.name, c.status, c.slug, c.stored, a, ok)
		}
	}
	for _, mode := range []string{"lease", "optimistic"} {
		t.Run("in "+mode+" mode", func(t *testing.T) { badInput(t, mode, corpus) })
	}
}

func badInput(t *testing.T, mode string, corpus []badCase) {
	tb := newTables(t)
	srv := start(t, serveBin(t), tb.env(mode)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	wantRecords := map[string]string{} // record id -> case
	var validKeys []string
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			key := newKey("bad")
			var values []string
			switch {
			case c.noKey:
			case c.keys == nil:
				values = []string{key}
			default:
				for _, v := range c.keys {
					values = append(values, strings.ReplaceAll(v, "{KEY}", key))
				}
			}
			r := rawCreate(t, ctx, srv.URL, values, c.ctype, c.body)
			if c.frontDoor {
				if r.Status != c.status {
					t.Errorf("want %d from the front door, got %v", c.status, r)
				}
				return
			}
			if r.Status != c.status || r.Header.Get("Content-Type") != problem.ContentType || problemType(r) != problem.Type(c.slug) {
				t.Errorf("want %d %s (%s), got %v", c.status, problem.ContentType, c.slug, r)
			}
			if c.keys == nil && !c.noKey {
				validKeys = append(validKeys, key)
				if c.stored {
					wantRecords[idem.RecordID(callerScope, key)] = c.name
				}
			}
		})
	}

	t.Run("a stored validation error is replayed and binds the key to the bad request", func(t *testing.T) {
		key := newKey("postcode")
		bad := []byte(strings.Replace(orderBody("postcode"), `"postcode":"2000"`, `"postcode":"3000"`, 1))
		first := rawCreate(t, ctx, srv.URL, []string{key}, "application/json", bad)
		again := rawCreate(t, ctx, srv.URL, []string{key}, "application/json", bad)
		if first.Status != 400 || again.Status != 400 || again.Header.Get(idemhttp.HeaderReplayed) != "true" || !bytes.Equal(first.Body, again.Body) {
			t.Errorf("the retry of a refused order is not its replay:\n first %v\n again %v", first, again)
		}
		fixed := rawCreate(t, ctx, srv.URL, []string{key}, "application/json", []byte(orderBody("postcode")))
		if fixed.Status != http.StatusUnprocessableEntity || problemType(fixed) != problem.Type(idemhttp.TypeKeyReused) {
			t.Errorf("a corrected order under the old key: want 422 %s, got %v", idemhttp.TypeKeyReused, fixed)
		}
		wantRecords[idem.RecordID(callerScope, key)] = "postcode replay"
	})

	var created []string // order ids
	t.Run("a used key answers what the service cannot read as a fresh key would, and still replays its order", func(t *testing.T) {
		key := newKey("used")
		body := []byte(orderBody("used"))
		first := rawCreate(t, ctx, srv.URL, []string{key}, "application/json", body)
		if first.Status != http.StatusCreated {
			t.Fatalf("first: %v", first)
		}
		created = append(created, strings.TrimPrefix(first.Header.Get("Location"), "/orders/"))
		wantRecords[idem.RecordID(callerScope, key)] = "used key"
		for _, c := range []struct {
			ctype  string
			body   []byte
			status int
			slug   string
		}{
			{"application/vnd.api+json", body, 415, idemhttp.TypeUnsupportedMediaType},
			{"text/plain", body, 415, idemhttp.TypeUnsupportedMediaType},
			{"application/json", []byte(`[]`), 400, idemhttp.TypeBodyMalformed},
			{"application/json", []byte(`null`), 400, idemhttp.TypeBodyMalformed},
			{"application/json", body[:len(body)-1], 400, idemhttp.TypeBodyMalformed},
		} {
			r := rawCreate(t, ctx, srv.URL, []string{key}, c.ctype, c.body)
			if r.Status != c.status || problemType(r) != problem.Type(c.slug) || r.Header.Get(idemhttp.HeaderReplayed) != "" {
				t.Errorf("%s %q with a used key: want %d %s, got %v", c.ctype, c.body[:min(len(c.body), 10)], c.status, c.slug, r)
			}
		}
		again := rawCreate(t, ctx, srv.URL, []string{`"` + key + `"`}, "Application/JSON; charset=UTF-8", body)
		if again.Status != http.StatusCreated || again.Header.Get(idemhttp.HeaderReplayed) != "true" || !bytes.Equal(again.Body, first.Body) {
			t.Errorf("the retry of the order: want the replay of %v, got %v", first, again)
		}
	})

	if got := scanOrders(t, tb.Orders); len(got) != len(created) {
		t.Errorf("bad input created %d orders, want only the %d good ones: %v", len(got)-len(created), len(created), got)
	}
	records := map[string]bool{}
	for _, item := range scanAll(t, tb.Idem) {
		if id, ok := item[idem.AttrID].(*types.AttributeValueMemberS); ok {
			records[id.Value] = true
		}
	}
	for id, name := range wantRecords {
		if !records[id] {
			t.Errorf("%s: no idempotency record, want one (stored by design)", name)
		}
	}
	for _, k := range validKeys {
		if id := idem.RecordID(callerScope, k); records[id] && wantRecords[id] == "" {
			t.Errorf("key %s: an idempotency record for a request app.Policy says is not stored", k)
		}
	}
	if len(records) != len(wantRecords) {
		t.Errorf("%d idempotency records, want %d (one per stored answer)", len(records), len(wantRecords))
	}
	t.Logf("FIGURES bad input (%s): %d malformed requests, %d stored by design, 0 orders from them", mode, len(corpus)+7, len(wantRecords)-1)
}

// rawCreate sends POST /orders over a fresh TCP connection, writing header
// values byte for byte (net/http's client refuses control characters), and
// reads the response.
func rawCreate(t *testing.T, ctx context.Context, base string, keys []string, ctype string, body []byte) resp {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST /orders HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\nAuthorization: %s\r\n", u.Host, len(body), bearer)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "Idempotency-Key: %s\r\n", k)
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: rb, Err: err}
}
