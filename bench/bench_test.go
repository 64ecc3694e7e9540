package bench_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/kinproc/kin/bench"
	"github.com/kinproc/kin/internal/kintest"
)

var implsFlag = flag.String("impls", "", "comma-separated implementations for BenchmarkIPC and BenchmarkSpawn (default all)")

// impls returns the implementations selected with -impls, nil for all.
func impls() []string {
	if *implsFlag == "" {
		return nil
	}
	return strings.Split(*implsFlag, ",")
}

// The Go children of the benchmarks are copies of this test binary.
func TestMain(m *testing.M) {
	bench.ChildMain()
	kintest.Main(m)
}

// quick reports whether a benchmark should run the quick comparison: under
// -short, and with -benchtime=1x, which is how CI runs every benchmark once.
// (b.N == 1 alone would not do: a plain -bench run also starts with b.N == 1
// and stops there, because one full comparison takes longer than 1 s.)
func quick() bool {
	if testing.Short() {
		return true
	}
	f := flag.Lookup("test.benchtime")
	return f != nil && f.Value.String() == "1x"
}

// checkSane fails t unless every result was measured, or skipped only for a
// missing node outside CI.
func checkSane(t testing.TB, rs []bench.Result, want int) {
	t.Helper()
	if len(rs) != want {
		t.Errorf("%d results, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.Skipped != "" {
			if !strings.Contains(r.Skipped, "node") || os.Getenv("CI") != "" {
				t.Errorf("%s %s %d skipped: %s", r.Bench, r.Impl, r.Size, r.Skipped)
			}
			continue
		}
		if r.N <= 0 || r.Value() <= 0 || r.Codec == "" {
			t.Errorf("implausible result %+v", r)
		}
		if r.Bench == bench.BenchOneWay && r.MBPerS <= 0 {
			t.Errorf("no MB/s in %+v", r)
		}
	}
}
