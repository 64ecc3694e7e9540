// Command echo-worker is a kin pool worker written with the worker package:
// it answers each task with {"echo": <the task's data>, "pid": <its pid>}.
// Tests, benchmarks and the README use it:
//
//	echo '{"n":1}' | kin pool -w 2 -- ./echo-worker
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/kinproc/kin/worker"
)

type reply struct {
	Echo json.RawMessage `json:"echo"`
	PID  int             `json:"pid"`
}

func main() {
	pid := os.Getpid()
	err := worker.Serve(func(ctx context.Context, t *worker.Task) ([]byte, error) {
		data := t.Data
		if len(data) == 0 {
			data = []byte("null")
		}
		return json.Marshal(reply{Echo: data, PID: pid})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-worker:", err)
		os.Exit(1)
	}
}
