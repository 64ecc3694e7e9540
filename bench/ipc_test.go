package bench_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/bench"
)

// BenchmarkIPC compares the IPC implementations, one sub-benchmark per
// benchmark and payload size, and reports each implementation's figure and
// its ratio to its baseline (see bench.Table). b.N full comparisons are run
// and their medians reported; -benchtime=1x or -short runs the quick one.
//
//	go test -run='^$' -bench=IPC -benchtime=3x ./bench
func BenchmarkIPC(b *testing.B) {
	for _, name := range []string{bench.BenchRTT, bench.BenchOneWay} {
		for _, size := range bench.Sizes {
			b.Run(name+"/"+metricSize(size), func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
				defer cancel()
				rs, err := bench.IPC(ctx, bench.Options{
					Quick:   quick(),
					Runs:    b.N,
					Impls:   impls(),
					Sizes:   []int{size},
					Benches: []string{name},
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				report(b, rs)
				b.Log("\n" + bench.Table(rs))
			})
		}
	}
}

// report reports each result's figures and its ratio to its baseline.
func report(b *testing.B, rs []bench.Result) {
	for _, r := range rs {
		if r.Skipped != "" {
			continue
		}
		switch r.Bench {
		case bench.BenchRTT:
			b.ReportMetric(r.RTTus, r.Impl+"-us")
		case bench.BenchOneWay:
			b.ReportMetric(r.MsgsPerS, r.Impl+"-msgs/s")
			b.ReportMetric(r.MBPerS, r.Impl+"-MB/s")
		case bench.BenchSpawn:
			b.ReportMetric(r.Ms, r.Impl+"-ms")
		}
		if ratio, base, ok := bench.Ratio(rs, r); ok {
			b.ReportMetric(ratio, r.Impl+"/"+base)
		}
	}
}

func metricSize(n int) string {
	switch {
	case n >= 1<<20:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// TestIPCQuick runs the quick comparison of every implementation and checks
// that each produced a plausible figure.
func TestIPCQuick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var lines []string
	rs, err := bench.IPC(ctx, bench.Options{Quick: true, Progress: func(s string) { lines = append(lines, s) }})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, rs, 2*len(bench.Sizes)*len(bench.IPCImpls))
	if len(lines) == 0 {
		t.Error("no progress lines")
	}
	table := bench.Table(rs)
	for _, impl := range bench.IPCImpls {
		if !strings.Contains(table, impl) {
			t.Errorf("table lacks %s:\n%s", impl, table)
		}
	}
	t.Log("\n" + table)
}

// TestIPCWithoutNode checks that the Node implementations are reported as
// skipped, not failed, when node is not installed. It changes PATH, so it
// cannot run in parallel.
func TestIPCWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := bench.IPC(ctx, bench.Options{
		Quick:   true,
		Sizes:   []int{bench.Size100B},
		Benches: []string{bench.BenchRTT},
		Impls:   []string{bench.ImplKinFrame, bench.ImplNodeFork, bench.ImplKinToNode},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("got %d results, want 3: %+v", len(rs), rs)
	}
	if rs[0].Skipped != "" || rs[0].RTTus <= 0 {
		t.Errorf("kin-frame: %+v", rs[0])
	}
	for _, r := range rs[1:] {
		if r.Skipped == "" {
			t.Errorf("%s ran without node: %+v", r.Impl, r)
		}
	}
}

func TestIPCBadOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, o := range []bench.Options{
		{Impls: []string{"carrier-pigeon"}},
		{Benches: []string{"latency"}},
		{Sizes: []int{0}},
		{Node: "/nonexistent/node"},
	} {
		if _, err := bench.IPC(ctx, o); err == nil {
			t.Errorf("IPC(%+v) succeeded", o)
		}
	}
}

// TestIPCCanceled checks that ending the context stops a full comparison
// promptly with the context's error; TestMain's leak check then finds every
// child waited for.
func TestIPCCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := bench.IPC(ctx, bench.Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IPC after its deadline: %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("IPC took %v to stop", d)
	}
}
