package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// baselines maps an implementation to the one it is measured against.
var baselines = map[string]string{
	ImplKinFrame:  ImplRaw,      // kin's fast path vs the floor
	ImplKinJSON:   ImplNodeFork, // Go↔Go JSON vs Node↔Node JSON
	ImplKinToNode: ImplNodeFork, // a Go parent for Node children vs a Node parent
	ImplNodeToKin: ImplNodeFork, // a Go child for Node parents vs a Node child
	ImplKinWorker: ImplRaw,      // a worker.Serve worker vs this program's bare start

	ImplKinNode:    ImplNodePool, // kin's pool vs a plain Node pool, same Node worker
	ImplKinNodeSeq: ImplNodePool,
	ImplKinGo:      ImplNodePool, // kin's pool of Go workers vs the Node pool
	ImplKinGoSeq:   ImplNodePool,
	ImplKinNode1:   ImplKinNode, // one worker vs two: the heavy batch's speed-up
	ImplNodePool1:  ImplNodePool,

	ImplKin: ImplPM2, // kin's process manager vs PM2
}

// Baseline returns the implementation impl is compared with in Table and
// Ratio, or "" for none.
func Baseline(impl string) string { return baselines[impl] }

// Ratio returns r's figure (Result.Value) divided by its baseline's, from the
// result in rs with the same benchmark and size (or r.VsPeer, when set). ok is false when r has no
// baseline or either was skipped or is missing. For round trips and spawns
// the ratio compares times (lower is better); for one-way, throughput
// (higher is better).
func Ratio(rs []Result, r Result) (ratio float64, base string, ok bool) {
	base = Baseline(r.Impl)
	if peer, ok := queueBaseline(r.Bench, r.Impl); ok {
		base = peer
	}
	if base == "" || r.Skipped != "" || r.Value() == 0 {
		return 0, base, false
	}
	if r.VsPeer > 0 {
		return r.VsPeer, base, true
	}
	for _, b := range rs {
		if b.Impl == base && b.Bench == r.Bench && b.Size == r.Size && b.Skipped == "" && b.Value() != 0 {
			return r.Value() / b.Value(), base, true
		}
	}
	return 0, base, false
}

// A Check is one of kin's performance targets, evaluated on results.
type Check struct {
	Name  string  // what is compared, e.g. "oneway 100 B kin-frame/raw msgs/s"
	Value float64 // the measured ratio (or milliseconds, for spawn)
	Goal  float64
	// AtMost says Value must not exceed Goal; otherwise it must reach it.
	AtMost bool
}

// Met reports whether the target is reached.
func (c Check) Met() bool {
	if c.AtMost {
		return c.Value <= c.Goal
	}
	return c.Value >= c.Goal
}

func (c Check) String() string {
	op, verdict := "≥", "met"
	if c.AtMost {
		op = "≤"
	}
	if !c.Met() {
		verdict = "MISSED"
	}
	return fmt.Sprintf("%s: %.3g (target %s %g) %s", c.Name, c.Value, op, c.Goal, verdict)
}

type target struct {
	bench  string
	size   int // 0: every size measured
	impl   string
	goal   float64
	atMost bool
	what   string
}

// targets are kin's stated goals (see DESIGN.md and ANCHORS.md): the frame
// codec close to raw sockets, kin's Node interop at least as fast as Node's
// own fork in both directions, and a Go worker ready within 5 ms.
var targets = []target{
	{BenchOneWay, Size100B, ImplKinFrame, 0.5, false, "msgs/s"},
	{BenchOneWay, Size1MiB, ImplKinFrame, 0.7, false, "MB/s"},
	{BenchRTT, Size100B, ImplKinFrame, 1.10, true, "round trip"},
	{BenchOneWay, 0, ImplKinToNode, 1.0, false, "msgs/s"},
	{BenchOneWay, 0, ImplNodeToKin, 1.0, false, "msgs/s"},
	{BenchSpawn, 0, ImplKinWorker, 5, true, "ms"},
	{BenchPoolTiny, 0, ImplKinNode, 1.5, false, "tasks/s"},
	{BenchPoolHeavy, 0, ImplKinNode1, 1.8, false, "speed-up of 2 workers over 1 (0.9 × ideal)"},
	{BenchPoolTiny, 0, ImplKinGo, 100000, false, "tasks/s"},
}

// Checks evaluates the targets that rs has the figures for.
func Checks(rs []Result) []Check {
	var out []Check
	for _, t := range targets {
		for _, r := range rs {
			if r.Bench != t.bench || r.Impl != t.impl || (t.size != 0 && r.Size != t.size) || r.Skipped != "" {
				continue
			}
			if t.bench == BenchSpawn {
				out = append(out, Check{Name: "spawn " + t.impl + " " + t.what, Value: r.Ms, Goal: t.goal, AtMost: t.atMost})
				continue
			}
			if t.impl == ImplKinGo { // an absolute rate
				out = append(out, Check{Name: fmt.Sprintf("%s %s %s", t.bench, t.impl, t.what), Value: r.MsgsPerS, Goal: t.goal})
				continue
			}
			if t.impl == ImplKinNode1 { // times: one worker's over two workers'
				ratio, base, ok := Ratio(rs, r)
				if ok {
					out = append(out, Check{Name: fmt.Sprintf("%s %s/%s %s", t.bench, t.impl, base, t.what), Value: ratio, Goal: t.goal})
				}
				continue
			}
			ratio, base, ok := Ratio(rs, r)
			if !ok {
				continue
			}
			name := fmt.Sprintf("%s %s/%s %s", t.bench, t.impl, base, t.what)
			if r.Size > 0 {
				name = fmt.Sprintf("%s %s %s/%s %s", t.bench, sizeName(r.Size), t.impl, base, t.what)
			}
			out = append(out, Check{Name: name, Value: ratio, Goal: t.goal, AtMost: t.atMost})
		}
	}
	out = append(out, pmChecks(rs)...)
	return append(out, queueChecks(rs)...)
}

// figure formats r's measurement.
func figure(r Result) string {
	if r.Skipped != "" {
		return "skipped: " + r.Skipped
	}
	if s, ok := pmFigure(r); ok {
		return s
	}
	if s, ok := queueFigure(r); ok {
		return s
	}
	switch r.Bench {
	case BenchRTT:
		if r.RTTus >= 1000 {
			return fmt.Sprintf("%.2f ms", r.RTTus/1000)
		}
		return fmt.Sprintf("%.1f µs", r.RTTus)
	case BenchOneWay:
		return fmt.Sprintf("%s msg/s  %.0f MB/s", count(r.MsgsPerS), r.MBPerS)
	case BenchPoolTiny:
		return count(r.MsgsPerS) + " tasks/s"
	case BenchPoolTask:
		return fmt.Sprintf("%.1f µs/task", r.RTTus)
	}
	return fmt.Sprintf("%.1f ms", r.Ms)
}

// count formats a rate with a k or M suffix.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// Table formats results as an aligned table, one line per result, with each
// implementation's ratio to its baseline and, at the end, kin's targets.
// Ratios of round trips and spawns compare times (lower is better), those
// of one-way runs compare throughput (higher is better).
func Table(rs []Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bench\tsize\timpl\tcodec\tn\tresult\tMB/s\tvs baseline\t")
	prev := ""
	for _, r := range rs {
		group := fmt.Sprint(r.Bench, r.Size)
		if prev != "" && group != prev {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
		}
		prev = group
		size := ""
		if r.Size > 0 {
			size = sizeName(r.Size)
		}
		vs := ""
		if ratio, base, ok := Ratio(rs, r); ok {
			vs = fmt.Sprintf("%.2f× %s", ratio, base)
		}
		result, mbs := figure(r), ""
		switch {
		case r.Skipped != "":
			result, vs = "skipped", r.Skipped
		case r.Bench == BenchOneWay:
			result, mbs = count(r.MsgsPerS)+" msg/s", fmt.Sprintf("%.0f", r.MBPerS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", r.Bench, size, r.Impl, r.Codec, r.N, result, mbs, vs)
	}
	tw.Flush()
	// tabwriter pads the blank separator lines; keep lines free of trailing blanks.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	b.Reset()
	b.WriteString(strings.Join(lines, "\n"))
	if checks := Checks(rs); len(checks) > 0 {
		b.WriteString("\ntargets (rtt and spawn ratios compare times, oneway ratios throughput):\n")
		for _, c := range checks {
			b.WriteString("  " + c.String() + "\n")
		}
	}
	return b.String()
}
