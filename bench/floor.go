package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/golang/snappy"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/local/apigw"
)

// The floor servers: what a create costs when a server does nothing but the
// DynamoDB calls of a protocol, behind the same HTTP contract (POST /orders
// with an Idempotency-Key, 201 with the order as JSON).
const (
	floorPut        = "put"        // one conditional PutItem of the order item carrying a record
	floorLease      = "lease"      // the lease protocol's two calls
	floorOptimistic = "optimistic" // the optimistic protocol's one transaction
	// floorPutGateway makes floorPut's call in a Lambda handler of its own
	// (no aws-lambda-go-api-proxy, no middleware) behind local/apigw's API
	// Gateway emulation, as local/serve runs ours: what it costs beyond
	// floorPut is the emulator's, not a function's.
	floorPutGateway = "put-gateway"
)

var floorModes = []string{floorPut, floorLease, floorOptimistic, floorPutGateway}

// floorServer holds what every request of a floor server shares: the order
// item and the response body, made once from orderstest.JSON; a request only
// puts a fresh id in them.
type floorServer struct {
	api          *dynamodb.Client
	mode         string
	orders, idem string
	item         map[string]types.AttributeValue // the order item without its id
	bodyHead     string                          // `{"order_id":"`
	bodyTail     []byte                          // the rest of the order JSON after the id
	// record is, for floorPut and floorPutGateway, the record attributes
	// Item mode puts on the order item, made once by itemRecord.
	record map[string]types.AttributeValue
}

// runFloor serves the floor of mode on a free 127.0.0.1 port until SIGTERM,
// writing orders to ordersTable and records to idemTable (both made by the
// bench), and prints "listening on http://ADDR" to stderr.
func runFloor(mode, ordersTable, idemTable string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	api, err := ddb.NewClient(ctx)
	if err != nil {
		return err
	}
	f, err := newFloorServer(api, mode, ordersTable, idemTable)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var h http.Handler = f
	if mode == floorPutGateway {
		if h, err = apigw.New(f.lambda, apigw.Options{Routes: []string{"POST /orders"}}); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "floor %s: listening on http://%s\n", mode, ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newFloorServer returns the floor of mode on api, writing orders to
// ordersTable and records to idemTable, with its order item and response
// body made once from orderstest.JSON.
func newFloorServer(api *dynamodb.Client, mode, ordersTable, idemTable string) (*floorServer, error) {
	req, err := orders.DecodeOrder([]byte(orderstest.JSON))
	if err != nil {
		return nil, err
	}
	const idMark = "00000000000000000000000000000000"
	o := orders.Book(idMark, req, time.Now())
	item, err := attributevalue.MarshalMap(o)
	if err != nil {
		return nil, err
	}
	body := string(orders.EncodeOrder(o))
	head, tail, ok := strings.Cut(body, idMark)
	if !ok {
		return nil, errors.New("floor: the order JSON does not hold its id")
	}
	return &floorServer{api: api, mode: mode, orders: ordersTable, idem: idemTable, item: item, bodyHead: head, bodyTail: []byte(tail),
		record: itemRecord(body)}, nil
}

func (f *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/orders" {
		http.NotFound(w, r)
		return
	}
	key := r.Header.Get(idemhttp.HeaderKey)
	if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, orders.MaxBodyBytes)); err != nil || key == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id, err := orders.NewID()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body := make([]byte, 0, len(f.bodyHead)+len(id)+len(f.bodyTail))
	body = append(append(append(body, f.bodyHead...), id...), f.bodyTail...)
	if err := f.create(r.Context(), key, id, body); err != nil {
		var ccf *types.ConditionalCheckFailedException
		var tce *types.TransactionCanceledException
		if errors.As(err, &ccf) || errors.As(err, &tce) {
			http.Error(w, "conflict", http.StatusConflict)
			return
		}
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Location", "/orders/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// lambda is floorPutGateway's function: ServeHTTP's work on an API Gateway
// event.
func (f *floorServer) lambda(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	key := ev.Headers[strings.ToLower(idemhttp.HeaderKey)]
	if key == "" {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest, Body: "bad request"}, nil
	}
	id, err := orders.NewID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	body := make([]byte, 0, len(f.bodyHead)+len(id)+len(f.bodyTail))
	body = append(append(append(body, f.bodyHead...), id...), f.bodyTail...)
	if err := f.create(ctx, key, id, body); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusConflict, Body: "conflict"}, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusServiceUnavailable, Body: err.Error()}, nil
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusCreated,
		Headers:    map[string]string{"Content-Type": "application/json", "Location": "/orders/" + id},
		Body:       string(body),
	}, nil
}

// create makes the DynamoDB calls of f's protocol for one order: the same
// items the service writes (the order item as orders.Store writes it; a
// record keyed by the SHA-256 of the key, holding the response), with the
// conditions the protocol needs and nothing else.
func (f *floorServer) create(ctx context.Context, key, id string, body []byte) error {
	item := maps.Clone(f.item)
	item["order_id"] = &types.AttributeValueMemberS{Value: id}
	putOrder := &types.Put{
		TableName: aws.String(f.orders), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(order_id)"),
	}
	sum := sha256.Sum256([]byte(key))
	rid := &types.AttributeValueMemberS{Value: hex.EncodeToString(sum[:])}
	now := time.Now()
	exp := &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(24*time.Hour).Unix(), 10)}
	owner := &types.AttributeValueMemberS{Value: id}
	switch f.mode {
	case floorPut, floorPutGateway:
		maps.Copy(item, f.record)
		_, err := f.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: putOrder.TableName, Item: item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk) OR (attribute_exists(#ttl) AND #exp < :now_s)"),
			ExpressionAttributeNames: map[string]string{"#pk": "order_id", "#ttl": idem.AttrItemTTL, "#exp": "idem_exp"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now_s": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		return err
	case floorLease:
		_, err := f.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(f.idem),
			Item: map[string]types.AttributeValue{
				"id": rid, "status": &types.AttributeValueMemberS{Value: "IN_PROGRESS"}, "owner": owner,
				"lease_until": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(10*time.Second).UnixMilli(), 10)},
				"expires_at":  exp,
			},
			ConditionExpression: aws.String("attribute_not_exists(id)"),
		})
		if err != nil {
			return err
		}
		_, err = f.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: putOrder},
			{Update: &types.Update{
				TableName: aws.String(f.idem), Key: map[string]types.AttributeValue{"id": rid},
				UpdateExpression:         aws.String("SET #s = :c, #d = :d REMOVE lease_until"),
				ConditionExpression:      aws.String("#o = :o"),
				ExpressionAttributeNames: map[string]string{"#s": "status", "#d": "data", "#o": "owner"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":c": &types.AttributeValueMemberS{Value: "COMPLETED"}, ":d": &types.AttributeValueMemberB{Value: body}, ":o": owner,
				},
			}},
		}})
		return err
	case floorOptimistic:
		_, err := f.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: putOrder},
			{Put: &types.Put{
				TableName: aws.String(f.idem),
				Item: map[string]types.AttributeValue{
					"id": rid, "status": &types.AttributeValueMemberS{Value: "COMPLETED"}, "owner": owner,
					"data": &types.AttributeValueMemberB{Value: body}, "expires_at": exp,
				},
				ConditionExpression: aws.String("attribute_not_exists(id)"),
			}},
		}})
		return err
	}
	return fmt.Errorf("floor: unknown mode %q", f.mode)
}

// itemRecord returns attributes like those Item mode adds to the order item
// whose response body is body: the stored response (status, the two headers
// and the body, Snappy-compressed), a 32-byte fingerprint, a 16-byte owner
// token, the key's expiry and the encoding marker, under Item mode's names.
func itemRecord(body string) map[string]types.AttributeValue {
	data := snappy.Encode(nil, []byte("\x01\xc9\x01\x02\x0cContent-Type\x01\x10application/json\x08Location\x01&/orders/ord_00000000000000000000000000"+body))
	fp := sha256.Sum256([]byte(body))
	return map[string]types.AttributeValue{
		"idem_data":  &types.AttributeValueMemberB{Value: data},
		"idem_enc":   &types.AttributeValueMemberS{Value: "snappy"},
		"idem_fp":    &types.AttributeValueMemberB{Value: fp[:]},
		"idem_owner": &types.AttributeValueMemberB{Value: fp[:16]},
		"idem_exp":   &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)},
	}
}
