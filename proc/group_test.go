package proc

import (
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// Fields 6–13, 16–19, 21 and 23 are filler: parseStat skips them.
	full := func(head string) string {
		return head + " 7 0 -1 4194304 99 0 0 0 250 130 0 0 20 0 3 0 987654 3133440 -2 18446744073709551615 0\n"
	}
	for _, c := range []struct {
		name, in string
		want     statLine
		ok       bool
	}{
		{"plain", full("123 (sleep) S 1 123"), statLine{pid: 123, comm: []byte("sleep"), state: 'S', ppid: 1, pgrp: 123, utime: 250, stime: 130, numThreads: 3, starttime: 987654, rss: -2}, true},
		{"comm holds ') '", full("7 (a) b) c) Z 1 99"), statLine{pid: 7, comm: []byte("a) b) c"), state: 'Z', ppid: 1, pgrp: 99, utime: 250, stime: 130, numThreads: 3, starttime: 987654, rss: -2}, true},
		{"comm holds '('", full("8 ((x) R 1 4194304"), statLine{pid: 8, comm: []byte("(x"), state: 'R', ppid: 1, pgrp: 4194304, utime: 250, stime: 130, numThreads: 3, starttime: 987654, rss: -2}, true},
		{"ends at rss", "9 (x) R 1 9 9 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 77 100 12\n", statLine{pid: 9, comm: []byte("x"), state: 'R', ppid: 1, pgrp: 9, utime: 5, stime: 6, numThreads: 1, starttime: 77, rss: 12}, true},
		{"cut off before rss", "9 (x) R 1 9 9 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 77 100", statLine{}, false},
		{"short", "9 (x) R 1", statLine{}, false},
		{"no fields", "9 (x)", statLine{}, false},
		{"negative pgrp", full("9 (x) R 1 -9"), statLine{}, false},
		{"utime overflows", strings.Replace(full("9 (x) R 1 9"), " 250 ", " 18446744073709551616 ", 1), statLine{}, false},
		{"no pid", full("(x) R 1 9"), statLine{}, false},
		{"garbage", "garbage", statLine{}, false},
		{"empty", "", statLine{}, false},
	} {
		got, ok := parseStat([]byte(c.in))
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestReadStatSelf checks the parser against the kernel: this process's
// own stat line.
func TestReadStatSelf(t *testing.T) {
	t.Parallel()
	st, ok := readStat("/proc/self/stat", make([]byte, statBufSize))
	if !ok {
		t.Fatal("cannot parse /proc/self/stat")
	}
	if st.pid != os.Getpid() || st.ppid != os.Getppid() || st.pgrp != syscall.Getpgrp() {
		t.Errorf("pid/ppid/pgrp %d/%d/%d, want %d/%d/%d", st.pid, st.ppid, st.pgrp, os.Getpid(), os.Getppid(), syscall.Getpgrp())
	}
	if !isLetter(st.state) || st.numThreads < 1 || st.rss <= 0 {
		t.Errorf("state %c, threads %d, rss %d pages: want a letter, ≥ 1, > 0", st.state, st.numThreads, st.rss)
	}
	exe, _ := os.Executable()
	want := exe[strings.LastIndexByte(exe, '/')+1:]
	if len(want) > 15 { // TASK_COMM_LEN - 1
		want = want[:15]
	}
	if string(st.comm) != want {
		t.Errorf("comm %q, want %q", st.comm, want)
	}
	start := bootTime().Add(ticks(st.starttime))
	if age := time.Since(start); age < 0 || age > time.Hour {
		t.Errorf("started %v ago (boot %v): want a moment ago", age, bootTime())
	}
}

func TestParseBootTime(t *testing.T) {
	t.Parallel()
	if got := parseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1763900000\nprocesses 9\n")); got.Unix() != 1763900000 {
		t.Errorf("btime: %v", got)
	}
	for _, in := range []string{"", "cpu 1\n", "btime x\n", "btime -5\n"} {
		if got := parseBootTime([]byte(in)); !got.IsZero() {
			t.Errorf("%q: %v, want the zero time", in, got)
		}
	}
	if readBootTime().IsZero() {
		t.Error("no btime in /proc/stat")
	}
}

func TestScanGroup(t *testing.T) {
	t.Parallel()
	// This process is in its own group's list.
	found := false
	for _, pid := range scanGroup(syscall.Getpgrp()) {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatal("scanGroup missed this process")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("123 (sleep) S 1 123 123 0 -1 4194304 99 0 0 0 250 130 0 0 20 0 3 0 987654 3133440 394 0\n"))
	f.Add([]byte("7 (a) b) c) Z 1 99 99"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := parseStat(b)
		if !ok {
			return
		}
		if st.pid <= 0 || st.ppid < 0 || st.pgrp < 0 || st.numThreads < 0 || st.state == 0 {
			t.Fatalf("%q: %+v", b, st)
		}
		// comm lies inside the input, between the parentheses.
		if len(st.comm) >= len(b) {
			t.Fatalf("%q: comm %q", b, st.comm)
		}
	})
}
