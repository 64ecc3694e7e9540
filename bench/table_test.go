package bench_test

import (
	"strings"
	"testing"

	"github.com/kinproc/kin/bench"
)

var sample = []bench.Result{
	{Bench: bench.BenchRTT, Impl: bench.ImplRaw, Codec: bench.CodecRaw, Size: 100, N: 20000, RTTus: 40},
	{Bench: bench.BenchRTT, Impl: bench.ImplKinFrame, Codec: bench.CodecFrame, Size: 100, N: 20000, RTTus: 48},
	{Bench: bench.BenchRTT, Impl: bench.ImplNodeFork, Codec: bench.CodecJSON, Size: 100, N: 20000, Skipped: "node not found in $PATH"},
	{Bench: bench.BenchRTT, Impl: bench.ImplKinToNode, Codec: bench.CodecJSON, Size: 100, N: 20000, Skipped: "node not found in $PATH"},
	{Bench: bench.BenchOneWay, Impl: bench.ImplRaw, Codec: bench.CodecRaw, Size: 100, N: 200000, MsgsPerS: 10e6, MBPerS: 1000},
	{Bench: bench.BenchOneWay, Impl: bench.ImplKinFrame, Codec: bench.CodecFrame, Size: 100, N: 200000, MsgsPerS: 6e6, MBPerS: 600},
	{Bench: bench.BenchOneWay, Impl: bench.ImplRaw, Codec: bench.CodecRaw, Size: 1 << 20, N: 200, MsgsPerS: 4000, MBPerS: 4194},
	{Bench: bench.BenchOneWay, Impl: bench.ImplKinFrame, Codec: bench.CodecFrame, Size: 1 << 20, N: 200, MsgsPerS: 1000, MBPerS: 1048},
	{Bench: bench.BenchSpawn, Impl: bench.ImplRaw, Codec: bench.CodecRaw, N: 30, Ms: 2},
	{Bench: bench.BenchSpawn, Impl: bench.ImplKinWorker, Codec: bench.CodecFrame, N: 30, Ms: 4},
}

func TestRatio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		i    int
		want float64
		base string
		ok   bool
	}{
		{0, 0, "", false},                 // raw has no baseline
		{1, 1.2, bench.ImplRaw, true},     // rtt: times
		{3, 0, bench.ImplNodeFork, false}, // skipped
		{5, 0.6, bench.ImplRaw, true},     // oneway: msgs/s
		{7, 0.25, bench.ImplRaw, true},    // same benchmark and size only
		{9, 2, bench.ImplRaw, true},       // spawn: ms
	} {
		got, base, ok := bench.Ratio(sample, sample[tt.i])
		if ok != tt.ok || base != tt.base || (ok && !near(got, tt.want)) {
			t.Errorf("Ratio(%s %s %d) = %v, %q, %v; want %v, %q, %v",
				sample[tt.i].Bench, sample[tt.i].Impl, sample[tt.i].Size, got, base, ok, tt.want, tt.base, tt.ok)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestChecks(t *testing.T) {
	t.Parallel()
	want := map[string]bool{
		"oneway 100 B kin-frame/raw msgs/s":  true,  // 0.6 ≥ 0.5
		"oneway 1 MiB kin-frame/raw MB/s":    false, // 0.25 < 0.7
		"rtt 100 B kin-frame/raw round trip": false, // 1.2 > 1.10
		"spawn kin-worker ms":                true,  // 4 ≤ 5
	}
	checks := bench.Checks(sample)
	if len(checks) != len(want) {
		t.Fatalf("got %d checks, want %d: %v", len(checks), len(want), checks)
	}
	for _, c := range checks {
		met, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected check %q", c.Name)
		} else if c.Met() != met {
			t.Errorf("%s: Met() = %v, want %v", c, c.Met(), met)
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	run := func(rtt, msgs float64) []bench.Result {
		return []bench.Result{
			{Bench: bench.BenchRTT, Impl: bench.ImplRaw, Size: 100, N: 10, RTTus: rtt},
			{Bench: bench.BenchOneWay, Impl: bench.ImplRaw, Size: 100, N: 10, MsgsPerS: msgs, MBPerS: msgs / 1e4},
		}
	}
	if got := bench.Median(nil); got != nil {
		t.Errorf("Median(nil) = %v", got)
	}
	got := bench.Median([][]bench.Result{run(50, 3e6), run(40, 1e6), run(45, 2e6)})
	if len(got) != 2 || got[0].RTTus != 45 || got[1].MsgsPerS != 2e6 || got[1].MBPerS != 200 || got[0].N != 10 {
		t.Errorf("median of 3 runs: %+v", got)
	}
	got = bench.Median([][]bench.Result{run(50, 3e6), run(40, 1e6)})
	if got[0].RTTus != 45 || got[1].MsgsPerS != 2e6 {
		t.Errorf("median of 2 runs: %+v", got)
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	table := bench.Table(sample)
	for _, want := range []string{
		"bench",
		"48.0 µs",
		"1.20× raw",
		"6.00 M msg/s",
		"600",
		"0.25× raw",
		"skipped              node not found",
		"4.0 ms",
		"rtt 100 B kin-frame/raw round trip: 1.2 (target ≤ 1.1) MISSED",
		"oneway 100 B kin-frame/raw msgs/s: 0.6 (target ≥ 0.5) met",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for i, line := range strings.Split(table, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d has trailing blanks: %q", i+1, line)
		}
	}
	t.Log("\n" + table)
}
