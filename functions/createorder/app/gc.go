package app

import (
	"os"
	"runtime/debug"
	"strconv"
)

// gcPercent is the GC target the service runs with unless GOGC is set.
//
// Measured (BenchmarkCreate, 3000 creates against DynamoDB Local, four
// alternating runs each, load ~12 on 2 cores): process CPU 1.80 s at the
// default GOGC=100, 1.53 s at 400, 15% less. A create allocates about 80-110
// KB and the live heap is a few MB (mostly the replay cache), so at 100 the
// collector runs every few dozen requests for little garbage.
const gcPercent = 400

// memoryLimitShare is the part of the Lambda function's memory given to the
// Go heap as a soft limit (GOMEMLIMIT), so that the higher GC target can
// never run the container out of memory: near the limit the collector works
// harder instead.
const memoryLimitShare = 0.75

// init tunes the garbage collector for every binary that serves the API
// (the Lambda bootstrap, local/serve) unless the environment already says
// how: GOGC and GOMEMLIMIT, when set, win. The memory limit is set only
// under Lambda (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB).
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if mb, err := strconv.Atoi(os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")); err == nil && mb > 0 {
			debug.SetMemoryLimit(int64(float64(mb) * memoryLimitShare * (1 << 20)))
		}
	}
}
