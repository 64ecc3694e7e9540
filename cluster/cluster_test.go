package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/cluster"
	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	kintest.Register("serve", helperServe)
	kintest.Register("listeners", helperListeners)
	kintest.Main(m)
}

// helperInfo is what the "serve" helper reports on its first line of stdout.
type helperInfo struct {
	PID         int    `json:"pid"`
	ListenPID   bool   `json:"listen_pid"`  // LISTEN_PID was this process's pid
	EnvUnset    bool   `json:"env_unset"`   // Listen removed the LISTEN_ variables
	Inherited   bool   `json:"inherited"`   // the listener is on the socket the test bound
	Inheritable []int  `json:"inheritable"` // inherited descriptors a child would inherit in turn, after Listen
	FDNames     string `json:"fdnames"`     // LISTEN_FDNAMES before Listen
	Port        string `json:"port"`        // $PORT
	ListenAddr  string `json:"listen_addr"` // the listener's address
}

// helperServe listens with cluster.Listen(args[0], args[1]) and serves HTTP,
// answering with its pid, after printing a helperInfo line.
func helperServe(args []string) {
	info := helperInfo{
		PID:       os.Getpid(),
		ListenPID: os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()),
		FDNames:   os.Getenv("LISTEN_FDNAMES"),
		Port:      os.Getenv("PORT"),
	}
	inodes := map[uint64]bool{}
	var st unix.Stat_t
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	for fd := 3; fd < 3+n; fd++ {
		if unix.Fstat(fd, &st) == nil {
			inodes[st.Ino] = true
		}
	}
	ln, err := cluster.Listen(args[0], args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	info.EnvUnset = os.Getenv("LISTEN_PID") == "" && os.Getenv("LISTEN_FDS") == "" && os.Getenv("LISTEN_FDNAMES") == "" && os.Getenv(cluster.EnvListen) == ""
	for fd := 3; fd < 3+n; fd++ {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			info.Inheritable = append(info.Inheritable, fd)
		}
	}
	info.ListenAddr = ln.Addr().String()
	if rc, err := ln.(syscall.Conn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if unix.Fstat(int(fd), &st) == nil {
				info.Inherited = inodes[st.Ino]
			}
		})
	}
	b, _ := json.Marshal(info)
	fmt.Println(string(b))
	pid := strconv.Itoa(os.Getpid())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, pid)
	}))
}

// helperListeners prints the addresses cluster.Listeners returns, one a
// line, then "err: …" or "ok".
func helperListeners(args []string) {
	lns, err := cluster.Listeners()
	for _, ln := range lns {
		fmt.Println(ln.Addr().String())
		ln.Close()
	}
	if more, _ := cluster.Listeners(); len(more) != 0 {
		fmt.Println("err: second call returned listeners again")
		return
	}
	if err != nil {
		fmt.Println("err:", err)
		return
	}
	fmt.Println("ok")
}

// testCtx returns a context that ends well before the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bind binds spec and closes the socket when the test ends.
func bind(t *testing.T, spec cluster.Spec) *cluster.Socket {
	t.Helper()
	s, err := cluster.Bind(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// instance is one started app instance.
type instance struct {
	*proc.Cmd
	out *bufio.Reader // stdout, when piped
}

// startOpts says how to start an instance.
type startOpts struct {
	path    string
	args    []string
	env     []string // added to this process's environment
	preload string   // the Node preload to require, if any
	channel bool     // give the instance a JSON IPC channel
	stdout  bool     // pipe stdout (instance.out)
	dir     string
}

// start starts an instance activated with sockets; it is killed and waited
// for when the test ends.
func start(t *testing.T, o startOpts, sockets ...*cluster.Socket) *instance {
	t.Helper()
	c := proc.Command(o.path, o.args...)
	c.Env = append(os.Environ(), o.env...)
	c.Dir = o.dir
	c.StopTimeout = 2 * time.Second
	c.Stderr = &testWriter{t: t}
	if o.channel {
		c.IPC = &ipc.Config{}
	}
	in := &instance{Cmd: c}
	if o.stdout {
		r, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		in.out = bufio.NewReader(r)
	}
	if len(sockets) > 0 {
		if err := cluster.Activate(c, sockets...); err != nil {
			t.Fatal(err)
		}
	}
	if o.preload != "" {
		if err := cluster.UseNodePreload(c, o.preload); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.Channel != nil {
			c.Channel.Close()
		}
		c.Kill()
		c.Wait()
	})
	return in
}

// testWriter passes a child's stderr to the test log. (The cleanup that
// kills the child waits for its stderr to be copied, so nothing is logged
// after the test ends.)
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("child stderr: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// readInfo reads the helperInfo line of a "serve" helper.
func readInfo(t *testing.T, in *instance) helperInfo {
	t.Helper()
	line, err := in.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the helper's info: %v (stderr: %s)", err, in.RecentStderr())
	}
	var info helperInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("helper info %q: %v", line, err)
	}
	return info
}

// waitListening waits for the instance's {"kin":"listening"} message and
// returns it.
func waitListening(t *testing.T, ctx context.Context, in *instance) map[string]any {
	t.Helper()
	for {
		m, err := in.Channel.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for listening from pid %d: %v (stderr: %s)", in.Process.Pid, err, in.RecentStderr())
		}
		var v map[string]any
		if json.Unmarshal(m.Data, &v) == nil && v["kin"] == "listening" {
			return v
		}
	}
}

// get fetches url on a new connection and returns the body.
func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	req.Close = true
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// waitServedBy sends requests on fresh connections, a few at a time, until
// every pid has answered one.
func waitServedBy(t *testing.T, url string, pids ...int) {
	t.Helper()
	ctx := testCtx(t)
	var mu sync.Mutex
	seen := map[string]int{}
	var lastErr error
	ok := kintest.Poll(30*time.Second, func() bool {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, err := get(ctx, url)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					lastErr = err
					return
				}
				seen[body]++
			}()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pids {
			if seen[strconv.Itoa(p)] == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("not every instance %v served %s: answers by pid %v, last error %v", pids, url, seen, lastErr)
	}
	t.Logf("answers by pid: %v", seen)
}

// url returns the http URL of a TCP socket bound on 127.0.0.1.
func url(s *cluster.Socket) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.Port()) + "/"
}

// helperCmd returns the path and arguments that run a registered helper,
// and its environment additions.
func helperCmd(name string, args ...string) (string, []string, []string) {
	path, argv, env := kintest.Command(name, args...)
	return path, argv, env[len(env)-1:]
}

func TestBindTCP(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	if s.Port() == 0 || s.Network() != "tcp" || s.Name() != strconv.Itoa(s.Port()) {
		t.Fatalf("port %d, network %q, name %q", s.Port(), s.Network(), s.Name())
	}
	if got := s.Addr().String(); got != "127.0.0.1:"+strconv.Itoa(s.Port()) {
		t.Fatalf("Addr = %s", got)
	}
	fd := int(s.File().Fd())
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v == 0 {
		t.Errorf("SO_REUSEADDR = %d, %v", v, err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
		t.Errorf("SO_ACCEPTCONN = %d, %v: not listening", v, err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Errorf("flags %#x, %v: want a blocking descriptor", flags, err)
	}
	if fdFlags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fdFlags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor is not close-on-exec in the parent")
	}
	// Nobody accepts, yet connections are queued by the kernel.
	c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// The port is taken while the socket is open.
	if _, err := cluster.Bind(cluster.Spec{Host: "127.0.0.1", Port: s.Port()}); err == nil || !strings.HasPrefix(err.Error(), "cluster: ") {
		t.Errorf("second bind on the port: %v, want a cluster: error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if s.File() != nil {
		t.Errorf("File after Close is not nil")
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("connect after Close succeeded")
	}
}

func TestBindAllInterfaces(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Name: "web"})
	if s.Name() != "web" {
		t.Errorf("Name = %q", s.Name())
	}
	if a := s.Addr().(*net.TCPAddr); !a.IP.IsUnspecified() {
		t.Errorf("Addr = %v, want an unspecified IP", a)
	}
	addrs := []string{"127.0.0.1"}
	if c, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		c.Close()
		addrs = append(addrs, "::1")
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(a, strconv.Itoa(s.Port())), 5*time.Second)
		if err != nil {
			t.Errorf("dial %s: %v", a, err)
			continue
		}
		c.Close()
	}
}

func TestBindUnix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	s := bind(t, cluster.Spec{Path: path, Mode: 0o660})
	if s.Network() != "unix" || s.Name() != "app.sock" || s.Port() != 0 {
		t.Errorf("network %q, name %q, port %d", s.Network(), s.Name(), s.Port())
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket file: %v, %v", fi, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A live socket is not replaced.
	if _, err := cluster.Bind(cluster.Spec{Path: path}); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Errorf("bind over a live socket: %v", err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// A stale socket file is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s2 := bind(t, cluster.Spec{Path: stale})
	if c, err := net.Dial("unix", stale); err != nil {
		t.Errorf("dial the replaced socket: %v", err)
	} else {
		c.Close()
	}
	// Close leaves alone a file that is no longer its socket.
	os.Remove(stale)
	os.WriteFile(stale, nil, 0o600)
	s2.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Errorf("Close removed a file that was not its socket: %v", err)
	}

	// A regular file is never removed.
	if _, err := cluster.Bind(cluster.Spec{Path: stale}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("bind over a regular file: %v", err)
	}
	if _, err := cluster.Bind(cluster.Spec{Path: stale, Port: 1}); err == nil {
		t.Errorf("bind with a path and a port succeeded")
	}
}

func TestBindErrors(t *testing.T) {
	t.Parallel()
	for _, spec := range []cluster.Spec{
		{Port: -1},
		{Port: 70000},
		{Name: "a:b"},
		{Host: "256.0.0.1"},
	} {
		if s, err := cluster.Bind(spec); err == nil {
			s.Close()
			t.Errorf("Bind(%+v) succeeded", spec)
		} else if !strings.HasPrefix(err.Error(), "cluster: ") {
			t.Errorf("Bind(%+v): %v: no cluster: prefix", spec, err)
		}
	}
}

func TestActivateErrors(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	closed, err := cluster.Bind(cluster.Spec{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	check := func(what string, c *proc.Cmd, sockets ...*cluster.Socket) {
		t.Helper()
		var path string
		var nargs, nfiles, nenv int
		if c != nil {
			path, nargs, nfiles, nenv = c.Path, len(c.Args), len(c.ExtraFiles), len(c.Env)
		}
		err := cluster.Activate(c, sockets...)
		if err == nil || !strings.HasPrefix(err.Error(), "cluster: ") {
			t.Errorf("%s: Activate = %v, want a cluster: error", what, err)
		}
		if c != nil && (c.Path != path || len(c.Args) != nargs || len(c.ExtraFiles) != nfiles || len(c.Env) != nenv) {
			t.Errorf("%s: the failed Activate changed the Cmd", what)
		}
	}
	check("nil cmd", nil, s)
	check("no sockets", proc.Command("/bin/true"))
	check("nil socket", proc.Command("/bin/true"), nil)
	check("closed socket", proc.Command("/bin/true"), closed)
	if !errors.Is(cluster.Activate(proc.Command("/bin/true"), closed), cluster.ErrClosed) {
		t.Errorf("a closed socket's error is not ErrClosed")
	}
	check("socket twice", proc.Command("/bin/true"), s, s)
	check("no program", proc.Command("kin-no-such-program-here"), s)
	check("empty path", &proc.Cmd{}, s)

	twice := proc.Command("/bin/true")
	if err := cluster.Activate(twice, s); err != nil {
		t.Fatal(err)
	}
	check("activated twice", twice, s)

	started := proc.Command("/bin/true")
	if err := started.Start(); err != nil {
		t.Fatal(err)
	}
	started.Wait()
	check("started", started, s)
}

func TestActivateEnv(t *testing.T) {
	t.Parallel()
	a := bind(t, cluster.Spec{Host: "127.0.0.1", Name: "web"})
	b := bind(t, cluster.Spec{Path: filepath.Join(t.TempDir(), "b.sock")})
	extra, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()

	c := proc.Command("true", "x", "y")
	c.Env = []string{"A=1", "LISTEN_PID=1", "LISTEN_FDS=9", "LISTEN_FDNAMES=old", "KIN_LISTEN=[]"}
	c.ExtraFiles = []*os.File{extra}
	if err := cluster.Activate(c, a, b); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Errorf("%s set twice", k)
		}
		env[k] = v
	}
	if env["A"] != "1" || env["LISTEN_FDS"] != "2" || env["LISTEN_FDNAMES"] != "web:b.sock" || env["LISTEN_PID"] != "" {
		t.Errorf("env %q", c.Env)
	}
	if env["PORT"] != strconv.Itoa(a.Port()) { // the only TCP socket
		t.Errorf("PORT=%q, want %d", env["PORT"], a.Port())
	}
	var desc []map[string]any
	if err := json.Unmarshal([]byte(env["KIN_LISTEN"]), &desc); err != nil || len(desc) != 2 {
		t.Fatalf("KIN_LISTEN=%s: %v", env["KIN_LISTEN"], err)
	}
	if desc[0]["fd"] != 3.0 || desc[0]["network"] != "tcp" || desc[0]["port"] != float64(a.Port()) || desc[0]["name"] != "web" {
		t.Errorf("KIN_LISTEN[0] = %v", desc[0])
	}
	if desc[1]["fd"] != 4.0 || desc[1]["network"] != "unix" || desc[1]["address"] != b.Addr().String() {
		t.Errorf("KIN_LISTEN[1] = %v", desc[1])
	}
	if len(c.ExtraFiles) != 3 || c.ExtraFiles[0] != a.File() || c.ExtraFiles[1] != b.File() || c.ExtraFiles[2] != extra {
		t.Errorf("ExtraFiles = %v", c.ExtraFiles)
	}
	if c.Path != "/bin/sh" || len(c.Args) != 6 || c.Args[1] != "-c" || !filepath.IsAbs(c.Args[3]) || c.Args[4] != "x" || c.Args[5] != "y" {
		t.Errorf("Path %q, Args %q", c.Path, c.Args)
	}

	// Two TCP sockets: no PORT. One: PORT, unless already set.
	c = proc.Command("/bin/true")
	c.Env = []string{}
	cluster.Activate(c, a, bind(t, cluster.Spec{Host: "127.0.0.1"}))
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "PORT=") {
			t.Errorf("%s with two TCP sockets", kv)
		}
	}
	c = proc.Command("/bin/true")
	c.Env = []string{"PORT=8080"}
	cluster.Activate(c, a)
	if !slicesContains(c.Env, "PORT=8080") || slicesContains(c.Env, "PORT="+strconv.Itoa(a.Port())) {
		t.Errorf("PORT replaced: %q", c.Env)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestGoChild: a Go child using cluster.Listen gets the inherited socket,
// with LISTEN_PID equal to its own pid (the trampoline), and two instances
// both serve on it.
func TestGoChild(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1", Name: "web"})
	path, args, env := helperCmd("serve", "tcp", ":"+strconv.Itoa(s.Port()))
	var pids []int
	for range 2 {
		in := start(t, startOpts{path: path, args: args, env: env, stdout: true}, s)
		info := readInfo(t, in)
		if info.PID != in.Process.Pid {
			t.Errorf("the helper's pid %d is not the started process's %d: the trampoline did not exec", info.PID, in.Process.Pid)
		}
		if !info.ListenPID || !info.EnvUnset || !info.Inherited || len(info.Inheritable) != 0 {
			t.Errorf("helper info %+v", info)
		}
		if info.FDNames != "web" || info.Port != strconv.Itoa(s.Port()) {
			t.Errorf("LISTEN_FDNAMES %q, PORT %q", info.FDNames, info.Port)
		}
		pids = append(pids, info.PID)
	}
	waitServedBy(t, url(s), pids...)
}

// TestGoChildNotInherited: without activation, or for an address that does
// not match when several sockets were passed, Listen binds as net.Listen.
func TestGoChildNotInherited(t *testing.T) {
	t.Parallel()
	path, args, env := helperCmd("serve", "tcp", "127.0.0.1:0")
	in := start(t, startOpts{path: path, args: args, env: append(env, "LISTEN_PID=1", "LISTEN_FDS=1"), stdout: true})
	info := readInfo(t, in)
	if info.Inherited || info.ListenPID || !info.EnvUnset {
		t.Errorf("helper info %+v", info)
	}
	body, err := get(testCtx(t), "http://"+info.ListenAddr+"/")
	if err != nil || body != strconv.Itoa(info.PID) {
		t.Errorf("GET on its own listener: %q, %v", body, err)
	}

	a := bind(t, cluster.Spec{Host: "127.0.0.1"})
	b := bind(t, cluster.Spec{Host: "127.0.0.1"})
	path, args, env = helperCmd("serve", "tcp", "127.0.0.1:0")
	in = start(t, startOpts{path: path, args: args, env: env, stdout: true}, a, b)
	if info := readInfo(t, in); info.Inherited || strings.HasSuffix(info.ListenAddr, ":"+strconv.Itoa(a.Port())) {
		t.Errorf("with two sockets, Listen(:0) took an inherited one: %+v", info)
	}
	// By address: the second socket.
	path, args, env = helperCmd("serve", "tcp", "127.0.0.1:"+strconv.Itoa(b.Port()))
	in = start(t, startOpts{path: path, args: args, env: env, stdout: true}, a, b)
	if info := readInfo(t, in); !info.Inherited || info.ListenAddr != b.Addr().String() {
		t.Errorf("Listen by address: %+v, want %s", info, b.Addr())
	}
}

func TestListeners(t *testing.T) {
	t.Parallel()
	a := bind(t, cluster.Spec{Host: "127.0.0.1"})
	b := bind(t, cluster.Spec{Path: filepath.Join(t.TempDir(), "l.sock")})
	path, args, env := helperCmd("listeners")
	in := start(t, startOpts{path: path, args: args, env: env, stdout: true}, a, b)
	out, _ := io.ReadAll(in.out)
	want := a.Addr().String() + "\n" + b.Addr().String() + "\nok\n"
	if string(out) != want {
		t.Errorf("Listeners printed %q, want %q", out, want)
	}
	if err := in.Wait(); err != nil {
		t.Error(err)
	}

	// A descriptor that is not a listening socket is an error.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := proc.Command(path, args...)
	c.Env = append(os.Environ(), env...)
	r, _ := c.StdoutPipe()
	c.ExtraFiles = []*os.File{f}
	c.Env = append(c.Env, "LISTEN_FDS=1")
	// LISTEN_PID through the trampoline, without a socket: a bare
	// Activate needs one, so set the script up by hand.
	c.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, path}, args...)
	c.Path = "/bin/sh"
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(r)
	c.Wait()
	if !strings.HasPrefix(string(out), "err: cluster: inherited fd 3") {
		t.Errorf("Listeners with /dev/null as fd 3 printed %q", out)
	}
}

// TestBlockingModeKept: starting an instance must not change the O_NONBLOCK
// flag of the socket's open file description, shared with the instances
// already running (a blocking accept would stall Node's event loop).
func TestBlockingModeKept(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	fd := s.File().Fd()
	if err := unix.SetNonblock(int(fd), true); err != nil { // as a running Node instance does
		t.Fatal(err)
	}
	c := proc.Command("/bin/true")
	if err := cluster.Activate(c, s); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(s.File().Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		t.Errorf("after starting an instance the socket is blocking (flags %#x, %v)", flags, err)
	}
}
