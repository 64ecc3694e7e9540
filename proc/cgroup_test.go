package proc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

func init() {
	// alloc touches N MiB (args[0]) and exits 0; with a second argument
	// it runs itself as a grandchild to do so and exits with its status.
	kintest.Register("alloc", func(args []string) {
		mib, _ := strconv.Atoi(args[0])
		if len(args) > 1 {
			path, argv, env := kintest.Command("alloc", args[0])
			gc := exec.Command(path, argv...)
			gc.Env = env
			if err := gc.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						os.Exit(100 + int(ws.Signal()))
					}
				}
				os.Exit(3)
			}
			os.Exit(0)
		}
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		os.Exit(int(b[len(b)/2]) - 1) // 0, and keeps b alive
	})
}

func TestParseCgroupFiles(t *testing.T) {
	t.Parallel()
	v1, v2 := parseProcCgroup([]byte("9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/x\n0::/\n"))
	if v1 != "/process_api/abc" || v2 != "/" {
		t.Errorf("v1 %q v2 %q", v1, v2)
	}
	if v1, v2 := parseProcCgroup([]byte("0::/user.slice/user-1000.slice/kin.service\n")); v1 != "" || v2 != "/user.slice/user-1000.slice/kin.service" {
		t.Errorf("pure v2: v1 %q v2 %q", v1, v2)
	}
	if v1, v2 := parseProcCgroup([]byte("garbage\n5:memory\n:\n")); v1 != "" || v2 != "" {
		t.Errorf("garbage: v1 %q v2 %q", v1, v2)
	}

	hybrid := "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n" +
		"34 30 0:31 /lxc/c1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"35 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	m1, r1, m2, r2 := parseCgroupMounts([]byte(hybrid))
	if m1 != "/sys/fs/cgroup/memory" || r1 != "/lxc/c1" || m2 != "/sys/fs/cgroup/unified" || r2 != "/" {
		t.Errorf("hybrid: %q %q %q %q", m1, r1, m2, r2)
	}
	m1, _, m2, r2 = parseCgroupMounts([]byte("40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n41 1 0:41 / /mnt/my\\040cg rw - cgroup2 none rw\n"))
	if m1 != "" || m2 != "/sys/fs/cgroup" || r2 != "/" {
		t.Errorf("v2: %q %q %q", m1, m2, r2)
	}
	if got := unescapeMount(`/mnt/my\040cg`); got != "/mnt/my cg" {
		t.Errorf("unescape: %q", got)
	}
	for _, c := range []struct {
		path, root, want string
		ok               bool
	}{
		{"/a/b", "/", "/a/b", true},
		{"/lxc/c1/x", "/lxc/c1", "/x", true},
		{"/lxc/c1", "/lxc/c1", "/", true},
		{"/lxc/c10", "/lxc/c1", "", false},
	} {
		if got, ok := underRoot(c.path, c.root); got != c.want || ok != c.ok {
			t.Errorf("underRoot(%q, %q) = %q %v", c.path, c.root, got, ok)
		}
	}
	if n := parseFlatKey([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), "oom_kill"); n != 3 {
		t.Errorf("oom_kill %d", n)
	}
	if n := parseFlatKey([]byte("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n"), "oom_kill"); n != 1 {
		t.Errorf("memory.events oom_kill %d", n)
	}
	if n := parseFlatKey([]byte("oom_kill_disable 0\n"), "oom_kill"); n != -1 {
		t.Errorf("absent: %d", n)
	}
}

// newCgroup creates a memory cgroup for the test, or skips it where this
// machine has none that it may write.
func newCgroup(t *testing.T, name string, limit int64) *MemoryCgroup {
	t.Helper()
	cg, err := NewMemoryCgroup(name, limit)
	if errors.Is(err, ErrNoCgroup) {
		t.Skipf("no writable memory cgroup here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(cg.Dir()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", cg.Dir(), err)
		}
	})
	return cg
}

func runIn(t *testing.T, cg *MemoryCgroup, args ...string) error {
	t.Helper()
	path, argv, env := kintest.Command("alloc", args...)
	c := Command(path, argv...)
	c.Env, c.Cgroup = env, cg
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c.Wait()
}

// TestMemoryCgroup: the kernel kills a child over the limit, and a
// grandchild too (children are born in the cgroup); a child under it runs
// to its end; the OOM kills are counted.
func TestMemoryCgroup(t *testing.T) {
	t.Parallel()
	if _, err := NewMemoryCgroup("x/y", 1); err == nil {
		t.Fatal("a name with a slash was accepted")
	}
	if _, err := NewMemoryCgroup("ok", 0); err == nil {
		t.Fatal("a zero limit was accepted")
	}
	cg := newCgroup(t, "test-"+strconv.Itoa(os.Getpid()), 64<<20)
	if filepath.Base(cg.Dir()) != "kin-"+strconv.Itoa(os.Getpid())+"-test-"+strconv.Itoa(os.Getpid()) {
		t.Fatalf("dir %s", cg.Dir())
	}
	if n := cg.OOMKills(); n != 0 {
		t.Fatalf("a new cgroup has %d OOM kills", n)
	}
	if err := runIn(t, cg, "8"); err != nil {
		t.Fatalf("8 MiB under a 64 MiB limit: %v", err)
	}
	err := runIn(t, cg, "256")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("256 MiB under a 64 MiB limit: %v, want SIGKILL", err)
	}
	if n := cg.OOMKills(); n < 1 {
		t.Fatalf("OOM kills %d after a kill", n)
	}
	// The grandchild is killed; the child reports its signal.
	err = runIn(t, cg, "256", "grandchild")
	if !errors.As(err, &ee) || ee.Code != 100+int(syscall.SIGKILL) {
		t.Fatalf("grandchild over the limit: %v, want exit %d", err, 100+int(syscall.SIGKILL))
	}
}

// TestStaleCgroups: an empty cgroup left by a process that is gone is
// removed; one of a live process is kept.
func TestStaleCgroups(t *testing.T) {
	t.Parallel()
	cg := newCgroup(t, "stale-probe", 64<<20)
	base := filepath.Dir(cg.Dir())
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, "kin-"+strconv.Itoa(dead.Process.Pid)+"-old")
	live := filepath.Join(base, "kin-1-live") // pid 1 always runs
	for _, d := range []string{stale, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { syscall.Rmdir(stale); syscall.Rmdir(live) })
	removeStaleCgroups(base)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale cgroup kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's cgroup was removed: %v", err)
	}
}

// TestMemoryCgroupKill: Kill reaches a process that left its group and
// session (setsid), which a signal to the group misses.
func TestMemoryCgroupKill(t *testing.T) {
	t.Parallel()
	cg := newCgroup(t, "kill", 256<<20)
	c := Command("/bin/sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
	c.Cgroup, c.KeepOrphans = cg, true
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(stdout)
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(out)))
	if err != nil || !kintest.Alive(pid) {
		t.Fatalf("escaped sleeper %q: %v", out, err)
	}
	if procs, _ := cgroupProcs(cg.Dir()); len(procs) != 1 || procs[0] != pid {
		t.Fatalf("cgroup holds %v, want [%d]", procs, pid)
	}
	cg.Kill()
	kintest.WaitGone(t, 5*time.Second, pid)
}

// FuzzParseCgroupFiles: the parsers of /proc/self/cgroup, mountinfo and
// flat key files never panic, and a path they return is absolute.
func FuzzParseCgroupFiles(f *testing.F) {
	f.Add([]byte("4:memory:/process_api/abc\n0::/\n"))
	f.Add([]byte("34 30 0:31 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
	f.Add([]byte("oom_kill 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v1, v2 := parseProcCgroup(b)
		for _, p := range []string{v1, v2} {
			if p != "" && p[0] != '/' {
				t.Fatalf("relative cgroup path %q", p)
			}
		}
		m1, r1, m2, r2 := parseCgroupMounts(b)
		if (m1 == "") != (r1 == "") || (m2 == "") != (r2 == "") {
			t.Fatalf("a mount without its root or back: %q %q %q %q", m1, r1, m2, r2)
		}
		if v1 != "" && r1 != "" {
			if rel, ok := underRoot(v1, r1); ok && (rel == "" || rel[0] != '/') {
				t.Fatalf("underRoot(%q, %q) = %q", v1, r1, rel)
			}
		}
		parseFlatKey(b, "oom_kill")
		unescapeMount(string(b))
	})
}
