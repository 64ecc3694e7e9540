package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoCgroup is returned by NewMemoryCgroup when this process has no
// memory cgroup it can create children in (no cgroup filesystem, not
// writable, or a cgroup-v2 parent that cannot delegate the memory
// controller). Callers fall back to sampling RSS.
var ErrNoCgroup = errors.New("proc: no writable memory cgroup")

// MemoryCgroup is a cgroup, child of this process's own memory cgroup,
// whose processes share a hard memory limit that the kernel enforces: a
// process tree over it is OOM-killed by the kernel, however fast it
// allocates. It uses cgroup v2 (memory.max) where /sys/fs/cgroup is the
// unified hierarchy and the v1 memory controller (memory.limit_in_bytes)
// where that is mounted instead. Cmd.Cgroup starts a child in it. The
// zero value is not usable; create one with NewMemoryCgroup and Remove it
// when its processes are gone.
type MemoryCgroup struct {
	dir string
	v2  bool
}

// cgroupPrefix starts the name of every cgroup kin creates: "kin-PID-NAME",
// PID being the creating process, so that a later one can remove those a
// killed process left behind (removeStaleCgroups).
const cgroupPrefix = "kin-"

var staleOnce sync.Once

// cgroupTrampoline joins a v1 cgroup and execs the program: $0 is the
// program, $1 the cgroup's cgroup.procs, the rest its arguments. It exits
// 126, as a shell does for a program it cannot run, when it cannot join.
const cgroupTrampoline = `echo $$ > "$1" || exit 126; shift; exec "$0" "$@"`

// NewMemoryCgroup creates the cgroup "kin-PID-name" (PID: this process)
// under this process's memory cgroup, with a hard limit of limit bytes
// (swap included where the kernel accounts it; on cgroup v2 an OOM kill
// takes every process of the cgroup, memory.oom.group). name must be a
// plain file name. The first call also removes the empty cgroups that
// processes no longer running left behind.
func NewMemoryCgroup(name string, limit int64) (*MemoryCgroup, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("proc: memory cgroup %s: limit %d is not positive", name, limit)
	}
	if name == "" || strings.ContainsAny(name, "/\x00") || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("proc: memory cgroup: bad name %q", name)
	}
	base, v2, err := memoryCgroupBase(true)
	if err != nil {
		return nil, err
	}
	staleOnce.Do(func() { removeStaleCgroups(base) })
	dir := filepath.Join(base, cgroupPrefix+strconv.Itoa(os.Getpid())+"-"+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %v", ErrNoCgroup, err)
		}
		// Left by an earlier run: reuse it if it is empty.
		if procs, _ := cgroupProcs(dir); len(procs) > 0 {
			return nil, fmt.Errorf("proc: memory cgroup %s is in use by pids %v", dir, procs)
		}
	}
	c := &MemoryCgroup{dir: dir, v2: v2}
	lim := strconv.FormatInt(limit, 10)
	if v2 {
		err = writeCgroupFile(dir, "memory.max", lim)
		writeCgroupFile(dir, "memory.swap.max", "0") // absent without swap accounting
		if err == nil {
			err = writeCgroupFile(dir, "memory.oom.group", "1")
		}
	} else {
		err = writeCgroupFile(dir, "memory.limit_in_bytes", lim)
		// memsw (memory + swap) must be ≥ the memory limit, hence second;
		// absent without swap accounting.
		writeCgroupFile(dir, "memory.memsw.limit_in_bytes", lim)
		// Charge a process's pages to the cgroup it joins (what it
		// allocated between exec and Add).
		writeCgroupFile(dir, "memory.move_charge_at_immigrate", "1")
	}
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("proc: memory cgroup %s: set the limit: %w", dir, err)
	}
	return c, nil
}

// Dir returns the cgroup's directory.
func (c *MemoryCgroup) Dir() string { return c.dir }

// OOMKills returns how many processes the kernel has killed in the cgroup
// for going over its limit, or -1 when the kernel does not say (v1 before
// Linux 4.13).
func (c *MemoryCgroup) OOMKills() int {
	file, key := "memory.oom_control", "oom_kill"
	if c.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return -1
	}
	return parseFlatKey(b, key)
}

// Kill SIGKILLs every process in the cgroup, those that left their
// process group or double-forked included (cgroup.kill on v2 since Linux
// 5.14, else one by one).
func (c *MemoryCgroup) Kill() {
	if c.v2 && writeCgroupFile(c.dir, "cgroup.kill", "1") == nil {
		return
	}
	for range 10 { // a process may fork while we kill
		procs, err := cgroupProcs(c.dir)
		if err != nil || len(procs) == 0 {
			return
		}
		for _, pid := range procs {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Remove deletes the cgroup once it has no processes left, waiting up to
// a second for the last ones to be reaped.
func (c *MemoryCgroup) Remove() error {
	deadline := time.Now().Add(time.Second)
	for {
		err := syscall.Rmdir(c.dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("proc: remove memory cgroup %s: %w", c.dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeStaleCgroups removes the kin cgroups under base whose creating
// process is gone and that hold no process.
func removeStaleCgroups(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // "kin-daemon", or its creator still runs
		}
		syscall.Rmdir(filepath.Join(base, e.Name())) // fails while it holds processes
	}
}

func writeCgroupFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// memoryCgroupBase returns the directory of this process's memory cgroup
// and whether it is cgroup v2. For v2, with delegate, it makes sure
// children can have the memory controller: the parent must list it in cgroup.subtree_control,
// which the kernel refuses while the parent itself holds processes (the
// "no internal processes" rule), so this process first moves into a leaf
// "kin-daemon" beside the cgroups it will create.
func memoryCgroupBase(delegate bool) (dir string, v2 bool, err error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	v1Path, v2Path := parseProcCgroup(self)
	v1Mount, v1Root, v2Mount, v2Root := parseCgroupMounts(mounts)
	switch {
	case v1Mount != "" && v1Path != "":
		rel, ok := underRoot(v1Path, v1Root)
		if !ok {
			return "", false, fmt.Errorf("%w: memory cgroup %s is outside the mounted %s", ErrNoCgroup, v1Path, v1Root)
		}
		dir = filepath.Join(v1Mount, rel)
	case v2Mount != "" && v2Path != "":
		rel, ok := underRoot(v2Path, v2Root)
		if !ok {
			return "", false, fmt.Errorf("%w: cgroup %s is outside the mounted %s", ErrNoCgroup, v2Path, v2Root)
		}
		dir, v2 = filepath.Join(v2Mount, rel), true
		if filepath.Base(dir) == cgroupPrefix+"daemon" {
			dir = filepath.Dir(dir) // moved there by an earlier call
		}
		if delegate {
			if err := delegateMemory(dir); err != nil {
				return "", false, err
			}
		}
	default:
		return "", false, fmt.Errorf("%w: no cgroup v2 or v1 memory hierarchy is mounted", ErrNoCgroup)
	}
	if syscall.Access(dir, 2 /* W_OK */) != nil {
		return "", false, fmt.Errorf("%w: %s is not writable", ErrNoCgroup, dir)
	}
	return dir, v2, nil
}

// delegateMemory enables the memory controller for dir's children.
func delegateMemory(dir string) error {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); err == nil && hasWord(b, "memory") {
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err != nil || !hasWord(b, "memory") {
		return fmt.Errorf("%w: the memory controller is not available in %s", ErrNoCgroup, dir)
	}
	err := writeCgroupFile(dir, "cgroup.subtree_control", "+memory")
	if errors.Is(err, syscall.EBUSY) {
		// This process (and maybe others) lives in dir: move it to a leaf.
		leaf := filepath.Join(dir, cgroupPrefix+"daemon")
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %v", ErrNoCgroup, err)
		}
		if err := writeCgroupFile(leaf, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
			return fmt.Errorf("%w: move to %s: %v", ErrNoCgroup, leaf, err)
		}
		err = writeCgroupFile(dir, "cgroup.subtree_control", "+memory")
	}
	if err != nil {
		return fmt.Errorf("%w: enable memory in %s: %v", ErrNoCgroup, dir, err)
	}
	return nil
}

// parseProcCgroup reads /proc/self/cgroup: "ID:controllers:path" lines,
// "0::path" for v2. It returns the v1 memory controller's path and the v2
// path.
func parseProcCgroup(b []byte) (v1Memory, v2 string) {
	for line := range strings.SplitSeq(string(b), "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(path, "/") {
			continue
		}
		if id == "0" && ctrls == "" {
			v2 = path
			continue
		}
		for c := range strings.SplitSeq(ctrls, ",") {
			if c == "memory" {
				v1Memory = path
			}
		}
	}
	return v1Memory, v2
}

// parseCgroupMounts reads /proc/self/mountinfo for the v1 memory
// hierarchy and the v2 hierarchy: each one's mount point and the cgroup
// path mounted there (its root). Lines are "ID PARENT MAJ:MIN ROOT
// MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS".
func parseCgroupMounts(b []byte) (v1Mount, v1Root, v2Mount, v2Root string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 > len(f) {
			continue
		}
		root, mount, fstype := unescapeMount(f[3]), unescapeMount(f[4]), f[sep+1]
		switch fstype {
		case "cgroup2":
			if v2Mount == "" || mount == "/sys/fs/cgroup" {
				v2Mount, v2Root = mount, root
			}
		case "cgroup":
			if sep+3 < len(f) {
				for o := range strings.SplitSeq(f[sep+3], ",") { // the superblock's options
					if o == "memory" && v1Mount == "" {
						v1Mount, v1Root = mount, root
					}
				}
			}
		}
	}
	return v1Mount, v1Root, v2Mount, v2Root
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space…).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// underRoot returns path relative to the mounted root, or false when the
// cgroup is not visible under that mount.
func underRoot(path, root string) (string, bool) {
	if root == "/" {
		return path, true
	}
	if path == root {
		return "/", true
	}
	if rel, ok := strings.CutPrefix(path, root+"/"); ok {
		return "/" + rel, true
	}
	return "", false
}

func hasWord(b []byte, w string) bool {
	for _, f := range strings.Fields(string(b)) {
		if f == w {
			return true
		}
	}
	return false
}

// parseFlatKey returns the value of key in a "key value" per line file
// (memory.events, memory.oom_control), or -1.
func parseFlatKey(b []byte, key string) int {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return -1
}
