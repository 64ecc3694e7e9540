package proc

import "strconv"

// scanGroup returns the live (not zombie) members of process group pgid by
// reading /proc/*/stat: it runs after every child's exit, so it is kept
// cheaper than a full Snapshot (one small read per process, no allocation
// per process).
func scanGroup(pgid int) []int {
	names, err := pidNames("/proc")
	if err != nil {
		return nil
	}
	var out []int
	buf := make([]byte, statBufSize)
	path := make([]byte, 0, 32)
	for _, name := range names {
		path = statPath(path, name)
		st, ok := readStat(string(path), buf)
		if !ok || st.pgrp != pgid || st.state == 'Z' || st.state == 'X' {
			continue
		}
		if pid, err := strconv.Atoi(name); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
