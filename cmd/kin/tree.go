package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kinproc/kin/proc"
)

func init() {
	register(&command{name: "tree", summary: "show a process tree with CPU, memory and threads", run: runTree})
}

const treeAbout = `Shows the process tree below PID (default 1, the whole machine): pid, parent,
CPU use, resident memory, thread count and command line. CPU% is measured over
--sample (0: the average over each process's life, as ps shows it).

With --threads, each process's threads are listed by name: a Node process shows
its main thread (which runs all JavaScript), the libuv pool and V8's helpers.`

// treeNode is one process in kin tree's output.
type treeNode struct {
	PID        int          `json:"pid"`
	PPID       int          `json:"ppid"`
	Command    string       `json:"command"`
	State      string       `json:"state"`
	CPUPercent float64      `json:"cpu_percent"`
	RSS        uint64       `json:"rss"`
	Threads    int          `json:"threads"`
	ThreadList []treeThread `json:"thread_list,omitempty"`
	Children   []*treeNode  `json:"children"`
}

type treeThread struct {
	TID        int     `json:"tid"`
	Name       string  `json:"name"`
	State      string  `json:"state"`
	CPUPercent float64 `json:"cpu_percent"`
}

func runTree(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "tree", "[PID] [--threads] [--json]", treeAbout)
	threads := fs.Bool("threads", false, "list each process's threads by name")
	asJSON := fs.Bool("json", false, "print the tree as one JSON object")
	sample := fs.Duration("sample", 250*time.Millisecond, "interval over which CPU% is measured (0: lifetime average)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	root := 1
	switch fs.NArg() {
	case 0:
	case 1:
		pid, err := strconv.Atoi(fs.Arg(0))
		if err != nil || pid <= 0 {
			return usageErrorf("tree: %q is not a process id", fs.Arg(0))
		}
		root = pid
	default:
		return usageErrorf("tree: one PID at most")
	}
	tree, err := buildTree(ctx, root, *threads, *sample)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		return enc.Encode(tree)
	}
	printTree(e.stdout, tree, *threads)
	return nil
}

func buildTree(ctx context.Context, root int, withThreads bool, sample time.Duration) (*treeNode, error) {
	first, err := proc.TakeSnapshot()
	if err != nil {
		return nil, err
	}
	if _, ok := first.Process(root); !ok {
		return nil, &exitError{code: exitFailure, err: fmt.Errorf("tree: no process %d", root)}
	}
	pids := append([]int{root}, first.Descendants(root)...)
	var threadsBefore map[int]map[int]time.Duration
	var threadsAt time.Time
	if withThreads && sample > 0 {
		threadsAt = time.Now()
		threadsBefore = map[int]map[int]time.Duration{}
		for _, pid := range pids {
			ts, _ := proc.Threads(pid)
			m := map[int]time.Duration{}
			for _, t := range ts {
				m[t.TID] = t.CPU
			}
			threadsBefore[pid] = m
		}
	}
	last := first
	if sample > 0 {
		select {
		case <-time.After(sample):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if last, err = proc.TakeSnapshot(); err != nil {
			return nil, err
		}
	}
	pct := func(cpu, before time.Duration, start time.Time) float64 {
		if sample > 0 {
			return 100 * float64(cpu-before) / float64(last.Taken.Sub(first.Taken))
		}
		if life := last.Taken.Sub(start); life > 0 {
			return 100 * float64(cpu) / float64(life)
		}
		return 0
	}
	var build func(pid int) *treeNode
	build = func(pid int) *treeNode {
		p, ok := last.Process(pid)
		if !ok {
			return nil // exited while we sampled
		}
		var before time.Duration
		if b, ok := first.Process(pid); ok && b.Start.Equal(p.Start) {
			before = b.CPU
		}
		n := &treeNode{PID: pid, PPID: p.PPID, Command: proc.CommandLine(pid), State: p.State,
			CPUPercent: round1(pct(p.CPU, before, p.Start)), RSS: p.RSS, Threads: p.NumThreads, Children: []*treeNode{}}
		if withThreads {
			ts, _ := proc.Threads(pid)
			now := time.Now()
			for _, t := range ts {
				v := 0.0
				if sample > 0 {
					v = 100 * float64(t.CPU-threadsBefore[pid][t.TID]) / float64(now.Sub(threadsAt))
				} else {
					v = pct(t.CPU, 0, p.Start)
				}
				n.ThreadList = append(n.ThreadList, treeThread{TID: t.TID, Name: t.Name, State: t.State, CPUPercent: round1(v)})
			}
		}
		for _, c := range last.Children(pid) {
			if cn := build(c); cn != nil {
				n.Children = append(n.Children, cn)
			}
		}
		return n
	}
	t := build(root)
	if t == nil {
		return nil, &exitError{code: exitFailure, err: fmt.Errorf("tree: process %d exited", root)}
	}
	return t, nil
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func printTree(w io.Writer, root *treeNode, withThreads bool) {
	t := &table{headers: []string{"PID", "PPID", "CPU%", "RSS", "THR", "COMMAND"},
		right: map[string]bool{"PID": true, "PPID": true, "CPU%": true, "RSS": true, "THR": true}}
	var walk func(n *treeNode, prefix string, last, top bool)
	walk = func(n *treeNode, prefix string, last, top bool) {
		branch, childPrefix := "", prefix
		if !top {
			if last {
				branch, childPrefix = prefix+"└─ ", prefix+"   "
			} else {
				branch, childPrefix = prefix+"├─ ", prefix+"│  "
			}
		}
		t.add(strconv.Itoa(n.PID), strconv.Itoa(n.PPID), fmt.Sprintf("%.1f", n.CPUPercent), humanBytes(n.RSS),
			strconv.Itoa(n.Threads), branch+shorten(n.Command, 100))
		if withThreads {
			tp := childPrefix
			if len(n.Children) > 0 {
				tp += "│  "
			} else {
				tp += "   "
			}
			for _, th := range n.ThreadList {
				t.add(strconv.Itoa(th.TID), "", fmt.Sprintf("%.1f", th.CPUPercent), "", "",
					fmt.Sprintf("%s· thread %s (%s)", tp, th.Name, th.State))
			}
		}
		for i, c := range n.Children {
			walk(c, childPrefix, i == len(n.Children)-1, false)
		}
	}
	walk(root, "", true, true)
	t.write(w)
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0fK", float64(b)/(1<<10))
	}
	return strings.TrimSpace(fmt.Sprintf("%dB", b))
}
