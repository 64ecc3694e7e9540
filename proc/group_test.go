package proc

import (
	"os"
	"syscall"
	"testing"
)

func TestParseStatPGRP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		state byte
		pgrp  int
		ok    bool
	}{
		{"123 (sleep) S 1 123 123 0 -1", 'S', 123, true},
		{"7 (a) b) c) Z 1 99 99", 'Z', 99, true}, // comm holds ") "
		{"8 (x) R 1 4194304 1", 'R', 4194304, true},
		{"9 (x) R 1", 0, 0, false},
		{"9 (x)", 0, 0, false},
		{"garbage", 0, 0, false},
		{"", 0, 0, false},
	} {
		st, pg, ok := parseStatPGRP([]byte(c.in))
		if ok != c.ok || (ok && (st != c.state || pg != c.pgrp)) {
			t.Errorf("%q: %c %d %v, want %c %d %v", c.in, st, pg, ok, c.state, c.pgrp, c.ok)
		}
	}
	// This process is in its own group's list.
	found := false
	for _, pid := range scanGroup(syscall.Getpgrp()) {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatal("scanGroup missed this process")
	}
}

func FuzzParseStatPGRP(f *testing.F) {
	f.Add([]byte("123 (sleep) S 1 123 123 0 -1"))
	f.Add([]byte("7 (a) b) c) Z 1 99 99"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, pg, ok := parseStatPGRP(b)
		if ok && (pg < 0 || st == 0 && len(b) == 0) {
			t.Fatalf("%q: %c %d", b, st, pg)
		}
	})
}
