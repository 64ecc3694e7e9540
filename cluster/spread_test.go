package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinproc/kin/cluster"
)

// TestSpread measures how evenly the kernel spreads connections over two
// Node instances: one socket shared by both, against one SO_REUSEPORT
// socket per instance (DESIGN.md, "Cluster mode"). It only runs with
// KIN_MEASURE=1, as it takes a while and asserts nothing:
//
//	KIN_MEASURE=1 go test -run TestSpread -v ./cluster/
func TestSpread(t *testing.T) {
	if os.Getenv("KIN_MEASURE") == "" {
		t.Skip("a measurement: set KIN_MEASURE=1 to run it")
	}
	const runs, workers, d = 3, 50, 2 * time.Second
	for _, layout := range strings.Fields(layouts()) {
		for _, mode := range []struct {
			workers   int
			keepAlive bool
		}{{workers, true}, {workers, false}, {1, false}} {
			for run := range runs {
				var sockets [2]*cluster.Socket
				sockets[0] = bind(t, cluster.Spec{Host: "127.0.0.1"})
				sockets[1] = sockets[0]
				if layout == "reuseport" {
					sockets[0].Close()
					a, err := cluster.BindReusePort(cluster.Spec{Host: "127.0.0.1"})
					if err != nil {
						t.Fatal(err)
					}
					b, err := cluster.BindReusePort(cluster.Spec{Host: "127.0.0.1", Port: a.Port()})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { a.Close(); b.Close() })
					sockets = [2]*cluster.Socket{a, b}
				}
				ctx := testCtx(t)
				var pids []string
				for _, s := range sockets {
					in := startNode(t, exampleNode(t), nil, []*cluster.Socket{s})
					waitListening(t, ctx, in)
					pids = append(pids, strconv.Itoa(in.Process.Pid))
				}
				reqs, conns := measureSpread(url(sockets[0]), mode.workers, d, mode.keepAlive)
				t.Logf("%-9s %2d clients keep-alive=%-5v run %d: requests %s, connections %s",
					layout, mode.workers, mode.keepAlive, run, share(reqs, pids), share(conns, pids))
			}
		}
	}
}

// measureSpread loads url for d from workers goroutines and returns the
// requests and the connections each pid answered.
func measureSpread(url string, workers int, d time.Duration, keepAlive bool) (reqs, conns map[string]int) {
	reqs, conns = map[string]int{}, map[string]int{}
	seen := map[string]bool{}
	var mu sync.Mutex
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableKeepAlives: !keepAlive}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var local string
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				reqs[string(body)]++
				if !seen[local] {
					seen[local] = true
					conns[string(body)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return reqs, conns
}

// share formats counts by pid as "a/b (x% : y%)".
func share(counts map[string]int, pids []string) string {
	var n []int
	total := 0
	for _, p := range pids {
		n = append(n, counts[p])
		total += counts[p]
	}
	if total == 0 {
		return "none"
	}
	sorted := append([]int(nil), n...)
	sort.Ints(sorted)
	var parts []string
	for _, c := range n {
		parts = append(parts, strconv.Itoa(c))
	}
	return fmt.Sprintf("%s (larger share %.0f%%)", strings.Join(parts, "/"), 100*float64(sorted[len(sorted)-1])/float64(total))
}

// layouts returns the socket layouts TestSpread measures, in order:
// $KIN_MEASURE_LAYOUTS or "shared reuseport".
func layouts() string {
	if l := os.Getenv("KIN_MEASURE_LAYOUTS"); l != "" {
		return l
	}
	return "shared reuseport"
}
