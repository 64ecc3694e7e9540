package proc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// scanGroup returns the live (not zombie) members of process group pgid by
// reading /proc/*/stat directly: it runs after every child's exit, so it
// is kept cheaper than a full Snapshot (one small read per process, no
// allocation per process).
func scanGroup(pgid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil
	}
	var out []int
	var buf [512]byte
	path := make([]byte, 0, 32)
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		path = append(path[:0], "/proc/"...)
		path = append(path, name...)
		path = append(path, "/stat"...)
		st, pg, ok := readStatPGRP(path, buf[:])
		if !ok || pg != pgid || st == 'Z' || st == 'X' {
			continue
		}
		if pid, err := strconv.Atoi(name); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// readStatPGRP reads the state and process group from a /proc/PID/stat
// file: "pid (comm) state ppid pgrp …", where comm may hold anything, so
// the fields are found after the last ')'.
func readStatPGRP(path []byte, buf []byte) (state byte, pgrp int, ok bool) {
	fd, err := syscall.Open(string(path), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	return parseStatPGRP(buf[:n])
}

// parseStatPGRP reads the state and process group from the contents of a
// /proc/PID/stat file.
func parseStatPGRP(b []byte) (state byte, pgrp int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	// ") S 123 456 ": the state, the parent, the group.
	if i < 0 || i+4 >= len(b) || b[i+1] != ' ' || b[i+3] != ' ' {
		return 0, 0, false
	}
	state = b[i+2]
	rest := b[i+4:]
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return 0, 0, false
	}
	rest = rest[sp+1:]
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		pgrp = pgrp*10 + int(c-'0')
		if pgrp > 1<<31 {
			return 0, 0, false // no pid is that large
		}
		ok = true
	}
	return state, pgrp, ok
}
