package samtemplate_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/samtemplate"
)

func load(t *testing.T, yaml string) *samtemplate.Template {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

const twoFunctions = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Memory: {Type: Number, Default: 512}
Globals:
  Function:
    Timeout: 10
    Handler: bootstrap
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: !Ref Memory
      Events:
        B: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: "/orders/{id}"}}
        A: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /orders}}
        Z: {Type: HttpApi, Properties: {ApiId: !Ref Api}}
  Files:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 3.5
      ReservedConcurrentExecutions: 6
      Events:
        Any: {Type: HttpApi, Properties: {Method: any, Path: "/files/{path+}"}}
        Queue: {Type: SQS, Properties: {Queue: arn}}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Queue: {Type: SQS, Properties: {Queue: arn}}
  Table: {Type: AWS::DynamoDB::Table}
`

func TestHTTPAPIFunctions(t *testing.T) {
	t.Parallel()
	got, err := load(t, twoFunctions).HTTPAPIFunctions()
	if err != nil {
		t.Fatal(err)
	}
	want := []samtemplate.Function{
		{ID: "Files", Handler: "bootstrap", Timeout: 3500 * time.Millisecond, MemoryMB: samtemplate.DefaultMemoryMB, ReservedConcurrency: 6, Routes: []string{"ANY /files/{path+}"}},
		{ID: "Orders", Handler: "bootstrap", Timeout: 10 * time.Second, MemoryMB: 512, Routes: []string{"POST /orders", "GET /orders/{id}", "$default"}},
	}
	t.Run("every function with an HttpApi event is found, with routes, timeout and memory as SAM resolves them", func(t *testing.T) {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
}

func TestHTTPAPIFunctionsRefusals(t *testing.T) {
	t.Parallel()
	fn := func(props string) string {
		return "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n" + props
	}
	cases := []struct{ name, yaml, want string }{
		{"an event with a path but no method is refused",
			fn("      Events:\n        E: {Type: HttpApi, Properties: {Path: /x}}\n"), "both Method and Path"},
		{"a route declared twice is refused",
			fn("      Events:\n        E1: {Type: HttpApi, Properties: {Method: GET, Path: /x}}\n        E2: {Type: HttpApi, Properties: {Method: get, Path: /x}}\n"), "declared by both"},
		{"a timeout that is not a number is refused",
			fn("      Timeout: soon\n      Events:\n        E: {Type: HttpApi}\n"), "Timeout"},
		{"a timeout referring to an unknown parameter is refused",
			fn("      Timeout: !Ref Nope\n      Events:\n        E: {Type: HttpApi}\n"), "Nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml).HTTPAPIFunctions()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
