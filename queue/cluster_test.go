package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

// TestClusterSurvivesANode runs a queue with 3 replicas on a 3-node cluster
// of embedded servers (routes on loopback, each node a child process, as
// three daemons would be), SIGKILLs one node mid-run, and checks that
// processing goes on and every job whose Add succeeded completes.
func TestClusterSurvivesANode(t *testing.T) {
	t.Parallel()
	const nodes = 3
	var ports, cports [nodes]string
	var routes []string
	for i := range nodes {
		ports[i] = strconv.Itoa(freePort(t))
		cports[i] = strconv.Itoa(freePort(t))
		routes = append(routes, "127.0.0.1:"+cports[i])
	}
	var urls []string
	var procs [nodes]*child
	for i := range nodes {
		var url string
		procs[i], url = startChild(t, "nats-node", t.TempDir(), ports[i], routes[i], strings.Join(routes, ","), fmt.Sprintf("n%d", i))
		urls = append(urls, url)
	}
	ctx := ctxFor(t, 4*time.Minute) // slow under -race on a busy machine
	connectAll := func() *queue.Client {
		c, err := queue.Connect(ctx, queue.ConnectConfig{URLs: urls, User: "kin", Password: "cluster-secret", Queue: queue.QueueConfig{Replicas: 3, AckWait: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	producer, consumer := connectAll(), connectAll()
	if err := producer.Declare(ctx, "replicated", queue.QueueConfig{Replicas: 3, AckWait: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	completed := map[string]int{}
	stop := working(t, consumer, "replicated", queue.WorkConfig{Concurrency: 4, Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		time.Sleep(time.Millisecond)
		return j.Data, nil
	}, OnDone: func(j *queue.Job) {
		if j.State == queue.Completed {
			mu.Lock()
			completed[j.ID]++
			mu.Unlock()
		}
	}})
	done := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(completed)
	}
	const n = 1500
	var failures atomic.Int32
	killed := make(chan int, 1)
	go func() {
		// Not WaitFor: its Fatal would end this goroutine only, and the
		// test would wait for killed forever (it hung .ci/run for 10 min).
		if !kintest.Poll(2*time.Minute, func() bool { return done() > n/3 }) {
			t.Errorf("a third of the jobs not done within 2 minutes (%d done)", done())
		}
		procs[1].kill()
		killed <- done()
	}()
	for i := range n {
		id := fmt.Sprintf("j%d", i)
		for {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := producer.Add(actx, "replicated", queue.JobSpec{ID: id, Data: data(i)})
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("add %s: %v", id, err)
			}
			failures.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
	atKill := <-killed
	kintest.WaitFor(t, 90*time.Second, "every job to complete on the two nodes left", func() bool { return done() == n })
	st := stop()
	dups := 0
	mu.Lock()
	for _, k := range completed {
		dups += k - 1
	}
	mu.Unlock()
	for i := range n {
		j, err := producer.Get(ctx, "replicated", fmt.Sprintf("j%d", i))
		if err != nil || j.State != queue.Completed || string(j.Result) != strconv.Itoa(i) {
			t.Fatalf("job %d: %+v %v", i, j, err)
		}
	}
	t.Logf("node n1 killed after %d jobs; %d adds failed and were repeated; %d duplicate completions; work stats %+v", atKill, failures.Load(), dups, st)
}

// nodeHelper runs one node of a cluster: args are the store directory, the
// client port, the route address, the routes and the node's name.
func nodeHelper(args []string) {
	port, _ := strconv.Atoi(args[1])
	s, err := queue.StartServer(queue.ServerConfig{
		Dir: args[0], Port: port, Name: args[4],
		User: "kin", Password: "cluster-secret",
		Cluster: queue.ClusterConfig{
			Listen: args[2], Routes: strings.Split(args[3], ","),
			User: "route", Password: "route-secret",
		},
		StartTimeout: 30 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(s.ClientURL())
	select {}
}
