// Command pool-func shows a Go program that runs a function of its own in a
// pool of worker processes: worker.Register names the function, worker.Main
// makes a copy of this program started by the pool serve it, and pool.New
// with Func starts those copies. A task that panics, crashes or hangs costs a
// worker process, never this one.
//
//	go run ./examples/pool-func
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/worker"
)

// hash is CPU-heavy work: n rounds of SHA-256 over a seed.
func hash(ctx context.Context, in struct {
	Seed   string `json:"seed"`
	Rounds int    `json:"rounds"`
}) (string, error) {
	sum := []byte(in.Seed)
	for i := 0; i < in.Rounds; i++ {
		s := sha256.Sum256(sum)
		sum = s[:]
	}
	return hex.EncodeToString(sum[:8]), nil
}

func main() {
	worker.Register("hash", worker.JSON(hash))
	worker.Main() // in a worker copy, this serves "hash" and never returns

	p, err := pool.New(pool.Config{Func: "hash", Workers: 2, TaskTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer p.Shutdown(context.Background())

	ctx := context.Background()
	seeds := []string{"alpha", "beta", "gamma", "delta"}
	results := make([]string, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task, _ := json.Marshal(map[string]any{"seed": seed, "rounds": 100000})
			out, err := p.Submit(ctx, task)
			if err != nil {
				results[i] = "error: " + err.Error()
				return
			}
			json.Unmarshal(out, &results[i])
		}()
	}
	wg.Wait()
	for i, seed := range seeds {
		fmt.Printf("%-6s %s\n", seed, results[i])
	}
	st := p.Stats()
	fmt.Printf("%d tasks on %d workers, p50 latency %v\n", st.Completed, st.Workers, st.LatencyP50.Round(time.Millisecond))
}
