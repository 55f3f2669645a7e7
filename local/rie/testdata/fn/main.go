// Command fn is a Lambda function for local/rie's tests: it answers each
// event {"sleep_ms": N, "exit": bool, "getenv": NAME, "print_bytes": M}
// with its process id, how many events this process has served, and the
// value of the environment variable NAME, after sleeping N ms; "exit" makes
// it crash mid-invocation; "print_bytes" makes it print a line of M bytes
// "x" to stdout, then the line "after the long line".
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	SleepMS int    `json:"sleep_ms"`
	Exit    bool   `json:"exit"`
	Getenv  string `json:"getenv"`
	Print   int    `json:"print_bytes"`
}

type answer struct {
	PID       int    `json:"pid"`
	Served    int64  `json:"served"`
	RequestID string `json:"request_id"`
	Function  string `json:"function"`
	Memory    string `json:"memory"`
	Value     string `json:"value"` // of the variable the event names
	Deadline  int64  `json:"deadline_ms"`
}

var served atomic.Int64

func main() {
	lambda.Start(func(ctx context.Context, ev event) (answer, error) {
		if ev.Exit {
			os.Exit(3)
		}
		if ev.Print > 0 {
			fmt.Println(strings.Repeat("x", ev.Print))
			fmt.Println("after the long line")
		}
		time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		return answer{
			PID: os.Getpid(), Served: served.Add(1), RequestID: lc.AwsRequestID,
			Function: lambdacontext.FunctionName, Memory: os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
			Value: os.Getenv(ev.Getenv), Deadline: time.Until(dl).Milliseconds(),
		}, nil
	})
}
