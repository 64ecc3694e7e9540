// Package kintest is kin's shared test machinery: helper processes (the test
// binary re-executes itself as the child, as os/exec's tests do), polling
// with deadlines instead of sleeping, and checks that a test left no
// goroutine, file descriptor or child process behind.
//
// It imports nothing from kin, so every package's tests can use it.
package kintest

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// EnvHelper names the helper a re-executed test binary runs.
const EnvHelper = "KINTEST_HELPER"

var (
	helpersMu sync.Mutex
	helpers   = map[string]func(args []string){}
)

// Register makes fn runnable as a child process called name. Call it from
// init or TestMain, before Main. fn runs in the re-executed test binary with
// the arguments given to Command; when it returns the process exits 0.
func Register(name string, fn func(args []string)) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	if _, dup := helpers[name]; dup {
		panic("kintest: helper registered twice: " + name)
	}
	helpers[name] = fn
}

// Main runs m, or the helper named by $KINTEST_HELPER when the test binary
// was re-executed as a child. After the tests it fails the run if goroutines,
// descriptors or child processes leaked. Call it from TestMain:
//
//	func TestMain(m *testing.M) { kintest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns the exit code, so that a
// TestMain with something to clean up after the tests (Main's os.Exit
// skips deferred calls) can do so, then exit with it.
func Run(m *testing.M) int {
	if name := os.Getenv(EnvHelper); name != "" {
		RunHelper(name) // exits
	}
	initRuntimeFDs()
	before := openFDs()
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(before); err != nil {
			fmt.Fprintln(os.Stderr, "kintest: leak after all tests passed:", err)
			code = 1
		}
	}
	return code
}

// RunHelper runs the helper called name with os.Args[1:] and exits. It is for
// programs other than test binaries that reuse the registry.
func RunHelper(name string) {
	helpersMu.Lock()
	fn := helpers[name]
	helpersMu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "kintest: no helper %q\n", name)
		os.Exit(2)
	}
	os.Unsetenv(EnvHelper)
	fn(os.Args[1:])
	os.Exit(0)
}

// Command returns the path, arguments and environment that run helper name
// in a fresh copy of the test binary. env is appended to the current
// environment.
func Command(name string, args ...string) (path string, argv []string, env []string) {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	env = append(os.Environ(), EnvHelper+"="+name)
	return exe, args, env
}

// WaitFor polls cond every few milliseconds until it returns true, and fails
// the test with what if that takes longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll calls cond until it returns true or timeout passes, and reports
// whether it succeeded.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	sleep := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(sleep)
		if sleep < 20*time.Millisecond {
			sleep *= 2
		}
	}
}

// Alive reports whether pid is a running process: it exists and is not a
// zombie. (Where the init process does not reap orphans, a killed orphan
// stays a zombie forever; it runs nothing and holds no resources but a pid.)
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// WaitGone waits until none of pids is alive, failing the test otherwise.
func WaitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("processes %v to be gone", pids), func() bool {
		for _, p := range pids {
			if Alive(p) {
				return false
			}
		}
		return true
	})
}

// Children returns the pids of this process's children, zombies included
// (a zombie child is one nobody waited for: a leak).
func Children() []int {
	return childrenOf(os.Getpid())
}

func childrenOf(ppid int) []int {
	var out []int
	// /proc/<pid>/task/<tid>/children lists the children of each thread.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", ppid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(s); err == nil {
				out = append(out, p)
			}
		}
	}
	sort.Ints(out)
	return out
}

// Descendants returns every process below pid (children, grandchildren…)
// that is alive.
func Descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range childrenOf(p) {
			if Alive(c) {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// initRuntimeFDs makes the runtime open its long-lived descriptors (the
// network poller) before the baseline is taken.
func initRuntimeFDs() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// openFDs returns this process's open descriptors and what they point to.
func openFDs() map[int]string {
	ents, _ := os.ReadDir("/proc/self/fd")
	out := make(map[int]string, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		out[fd] = target
	}
	return out
}

// FDLeaks returns the descriptors open now that were not open in before.
func FDLeaks(before map[int]string) []string {
	var leaks []string
	for fd, target := range openFDs() {
		if _, ok := before[fd]; !ok {
			leaks = append(leaks, fmt.Sprintf("fd %d -> %s", fd, target))
		}
	}
	sort.Strings(leaks)
	return leaks
}

// withoutProfiles drops the files "go test" itself keeps open for
// -test.cpuprofile, -test.trace and the like.
func withoutProfiles(leaks []string) []string {
	var names []string
	for _, f := range []string{"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace", "test.coverprofile"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			names = append(names, filepath.Base(fl.Value.String()))
		}
	}
	out := leaks[:0]
next:
	for _, l := range leaks {
		for _, n := range names {
			if strings.HasSuffix(l, "/"+n) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func checkLeaks(before map[int]string) error {
	var problems []string
	if err := goleak.Find(); err != nil {
		problems = append(problems, err.Error())
	}
	var leaks []string
	if !Poll(5*time.Second, func() bool { leaks = withoutProfiles(FDLeaks(before)); return len(leaks) == 0 }) {
		problems = append(problems, "descriptors left open: "+strings.Join(leaks, ", "))
	}
	var kids []int
	if !Poll(5*time.Second, func() bool { kids = Children(); return len(kids) == 0 }) {
		problems = append(problems, fmt.Sprintf("child processes left behind (never waited for): %v", kids))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// Node returns the path of the node binary. Without it the test is skipped,
// except under CI (CI=true), where it fails: CI must test Node interop.
func Node(t testing.TB) string {
	t.Helper()
	return needBinary(t, "node")
}

// Python returns the path of python3, like Node.
func Python(t testing.TB) string {
	t.Helper()
	return needBinary(t, "python3")
}

func needBinary(t testing.TB, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// RepoRoot returns the repository's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a child's output
// written by one goroutine and read by the test's. The zero value is empty.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
