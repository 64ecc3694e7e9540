package proc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// statLine holds the fields kin uses of a /proc/PID/stat (or
// /proc/PID/task/TID/stat) line: "pid (comm) state ppid pgrp … utime
// stime … num_threads … starttime vsize rss …" (proc(5)).
type statLine struct {
	pid        int
	comm       []byte // aliases the buffer that was parsed
	state      byte
	ppid, pgrp int
	// utime and stime are in clock ticks (USER_HZ).
	utime, stime uint64
	numThreads   int
	// starttime is in clock ticks since boot.
	starttime uint64
	// rss is in pages.
	rss int64
}

// Field numbers of proc(5) counted from the state (3) as 0.
const (
	fPPID       = 1  // 4
	fPGRP       = 2  // 5
	fUTime      = 11 // 14
	fSTime      = 12 // 15
	fNumThreads = 17 // 20
	fStartTime  = 19 // 22
	fRSS        = 21 // 24
)

// parseStat parses the contents of a stat file. comm may hold anything,
// spaces and ')' included, so the fields are found after the last ')'.
// Fields beyond rss are ignored, and may be cut off.
func parseStat(b []byte) (s statLine, ok bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 2 || end < open || b[open-1] != ' ' {
		return s, false
	}
	pid, ok := parseUint(b[:open-1])
	if !ok || pid == 0 || pid > 1<<31 {
		return s, false
	}
	s.pid = int(pid)
	s.comm = b[open+1 : end]
	rest := b[end+1:]
	// " S 1 …": the state, then the numeric fields.
	if len(rest) < 4 || rest[0] != ' ' || rest[2] != ' ' || !isLetter(rest[1]) {
		return s, false
	}
	s.state = rest[1]
	rest = rest[3:]
	for i := fPPID; i <= fRSS; i++ {
		f := rest
		if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
			f, rest = rest[:sp], rest[sp+1:]
		} else if i == fRSS {
			f, rest = bytes.TrimRight(rest, "\n"), nil
		} else {
			return s, false // cut off before rss
		}
		var v uint64
		switch i {
		case fPPID, fPGRP, fNumThreads:
			if v, ok = parseUint(f); !ok || v > 1<<31 {
				return s, false
			}
			switch i {
			case fPPID:
				s.ppid = int(v)
			case fPGRP:
				s.pgrp = int(v)
			default:
				s.numThreads = int(v)
			}
		case fUTime, fSTime, fStartTime:
			if v, ok = parseUint(f); !ok {
				return s, false
			}
			switch i {
			case fUTime:
				s.utime = v
			case fSTime:
				s.stime = v
			default:
				s.starttime = v
			}
		case fRSS:
			neg := len(f) > 0 && f[0] == '-'
			if neg {
				f = f[1:]
			}
			if v, ok = parseUint(f); !ok || v > 1<<62 {
				return s, false
			}
			s.rss = int64(v)
			if neg {
				s.rss = -s.rss
			}
		}
	}
	return s, true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// parseUint parses a non-empty run of decimal digits that fits in a uint64.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// statBufSize holds a stat line up to rss with room to spare: 24 fields of
// at most 20 digits and a comm of at most 64 bytes.
const statBufSize = 1024

// readStat reads and parses the stat file at path into buf, which must
// be statBufSize long; the result's comm aliases buf.
func readStat(path string, buf []byte) (statLine, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return statLine{}, false
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return statLine{}, false
	}
	return parseStat(buf[:n])
}

// readPidStat reads /proc/PID/stat; the result's comm has its own buffer.
func readPidStat(pid int) (statLine, bool) {
	return readStat("/proc/"+strconv.Itoa(pid)+"/stat", make([]byte, statBufSize))
}

// statPath returns "/proc/PID/stat" built in path's storage.
func statPath(path []byte, pid string) []byte {
	path = append(path[:0], "/proc/"...)
	path = append(path, pid...)
	return append(path, "/stat"...)
}

// pidNames returns the names of the numeric entries of dir (/proc or
// /proc/PID/task).
func pidNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, name := range names {
		if name != "" && name[0] >= '0' && name[0] <= '9' {
			out = append(out, name)
		}
	}
	return out, nil
}

// readBootTime reads the "btime" line of /proc/stat: when the machine
// booted, in seconds since the epoch.
func readBootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	return parseBootTime(b)
}

func parseBootTime(b []byte) time.Time {
	for len(b) > 0 {
		line := b
		if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
			line, b = b[:nl], b[nl+1:]
		} else {
			b = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			if s, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err == nil && s >= 0 {
				return time.Unix(s, 0)
			}
			return time.Time{}
		}
	}
	return time.Time{}
}
