package cluster_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/cluster"
	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

// preloadOnce writes the preload once for all tests of the run.
var preloadOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kin-cluster-test-")
	if err != nil {
		return "", err
	}
	return cluster.WriteNodePreload(dir)
})

func preload(t *testing.T) string {
	t.Helper()
	p, err := preloadOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startNode starts node script args… as an instance on sockets, with the
// preload and a channel.
func startNode(t *testing.T, script string, env []string, sockets []*cluster.Socket, args ...string) *instance {
	t.Helper()
	return start(t, startOpts{
		path:    kintest.Node(t),
		args:    append([]string{script}, args...),
		env:     env,
		preload: preload(t),
		channel: true,
	}, sockets...)
}

// exampleNode is the unmodified example server.
func exampleNode(t *testing.T) string {
	return filepath.Join(kintest.RepoRoot(t), "examples", "cluster-node", "server.js")
}

// waitExit waits for the instance to exit by itself and returns Wait's error.
func waitExit(t *testing.T, in *instance, d time.Duration) error {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(d):
		t.Fatalf("pid %d still running after %v (stderr: %s)", in.Process.Pid, d, in.RecentStderr())
	}
	return in.Wait()
}

func TestWriteNodePreload(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sub")
	p, err := cluster.WriteNodePreload(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p) != dir || !strings.HasPrefix(filepath.Base(p), "kin-preload-") || filepath.Ext(p) != ".js" {
		t.Errorf("path %s", p)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != string(cluster.NodePreload()) {
		t.Fatalf("content differs: %v", err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	p2, err := cluster.WriteNodePreload(dir)
	if err != nil || p2 != p {
		t.Errorf("second write: %s, %v", p2, err)
	}
	// A damaged file is replaced.
	os.WriteFile(p, []byte("broken"), 0o644)
	if _, err := cluster.WriteNodePreload(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(cluster.NodePreload()) {
		t.Errorf("damaged preload not replaced")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir holds %d files, want 1 (no temporary left)", len(ents))
	}
	if _, err := cluster.WriteNodePreload(filepath.Join(p, "x")); err == nil || !strings.HasPrefix(err.Error(), "cluster: ") {
		t.Errorf("write under a file: %v", err)
	}
}

// TestNodeTwoInstances: the unmodified example server, two instances on one
// kin socket, both serve; each reports listening on the channel.
func TestNodeTwoInstances(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	var pids []int
	for range 2 {
		in := startNode(t, exampleNode(t), nil, []*cluster.Socket{s})
		m := waitListening(t, ctx, in)
		if m["port"] != float64(s.Port()) || m["fd"] != 3.0 {
			t.Errorf("listening message %v", m)
		}
		pids = append(pids, in.Process.Pid)
	}
	waitServedBy(t, url(s), pids...)
}

// TestNodePreloadPathQuoted: a preload path with a space, a quote and a
// backslash reaches Node through NODE_OPTIONS, next to other options.
func TestNodePreloadPathQuoted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), `a dir "with" \ quotes`)
	p, err := cluster.WriteNodePreload(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	in := start(t, startOpts{
		path:    kintest.Node(t),
		args:    []string{exampleNode(t)},
		env:     []string{"NODE_OPTIONS=--max-old-space-size=200"},
		preload: p,
		channel: true,
	}, s)
	waitListening(t, ctx, in)
	if body, err := get(ctx, url(s)); err != nil || body != strconv.Itoa(in.Process.Pid) {
		t.Errorf("GET: %q, %v", body, err)
	}
}

// TestNodeNotUnderKin: with the preload but no kin sockets, an app binds as
// it always does.
func TestNodeNotUnderKin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	port := freePort(t)
	in := start(t, startOpts{
		path:    kintest.Node(t),
		args:    []string{exampleNode(t)},
		env:     []string{"PORT=" + strconv.Itoa(port)},
		preload: preload(t),
		channel: true,
	})
	var body string
	kintest.WaitFor(t, 20*time.Second, "the app to bind its port", func() bool {
		var err error
		body, err = get(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/")
		return err == nil
	})
	if body != strconv.Itoa(in.Process.Pid) {
		t.Errorf("body %q", body)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNodeListenSignatures: every form of listen() on a handed-over port
// uses kin's socket (binding would fail: kin holds the port), a unix socket
// too, and ports kin did not hand over are bound as usual.
func TestNodeListenSignatures(t *testing.T) {
	t.Parallel()
	const forms = 7
	var sockets []*cluster.Socket
	var ports []string
	for range forms {
		s := bind(t, cluster.Spec{Host: "127.0.0.1"})
		sockets = append(sockets, s)
		ports = append(ports, strconv.Itoa(s.Port()))
	}
	sockPath := filepath.Join(t.TempDir(), "n.sock")
	sockets = append(sockets, bind(t, cluster.Spec{Path: sockPath}))
	free := freePort(t)
	in := start(t, startOpts{
		path:    kintest.Node(t),
		args:    []string{"testdata/signatures.js"},
		env:     []string{"PORTS=" + strings.Join(ports, ","), "SOCK_PATH=" + sockPath, "FREE_PORT=" + strconv.Itoa(free)},
		preload: preload(t),
		channel: true,
		stdout:  true,
	}, sockets...)
	out, _ := io.ReadAll(in.out)
	if err := in.Wait(); err != nil {
		t.Fatalf("%v; output %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != forms+3 {
		t.Fatalf("output %q", out)
	}
	for i, l := range lines {
		var r struct {
			Port  int
			Path  string
			Error string
		}
		json.Unmarshal([]byte(l), &r)
		switch {
		case r.Error != "":
			t.Errorf("listen form %d failed: %s", i, r.Error)
		case i < forms && r.Port != sockets[i].Port():
			t.Errorf("listen form %d: port %d, want %d", i, r.Port, sockets[i].Port())
		case i == forms && r.Path != sockPath:
			t.Errorf("unix listen: %q, want %s", r.Path, sockPath)
		case i == forms+1 && r.Port != free:
			t.Errorf("listen on a port kin did not hand over: %d, want %d", r.Port, free)
		case i == forms+2 && r.Port == 0:
			t.Errorf("listen(0): port 0")
		}
	}
	// Every kin server said so on the channel.
	ctx := testCtx(t)
	for range forms + 1 {
		waitListening(t, ctx, in)
	}
}

// TestNodeExitsWhenIdle: the preload keeps nothing alive. An app with
// nothing to do exits with the channel open, and so does one whose kin
// server closed (after the preload started listening for messages).
func TestNodeExitsWhenIdle(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	for _, script := range []string{"testdata/idle.js", "testdata/listen-close.js"} {
		in := startNode(t, script, nil, []*cluster.Socket{s})
		if err := waitExit(t, in, 20*time.Second); err != nil {
			t.Errorf("%s: %v", script, err)
		}
	}
}

// TestNodeOwnMessageListener: the preload's own message listener does not
// count, but the app's still keeps the process alive as usual.
func TestNodeOwnMessageListener(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	in := startNode(t, "testdata/listen-close.js", nil, []*cluster.Socket{s}, "own-listener")
	waitListening(t, ctx, in)
	for i := 1; i <= 3; i++ {
		if err := in.Channel.Send(ctx, ipc.Message{Data: []byte(fmt.Sprintf(`{"ping":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
		m, err := in.Channel.Recv(ctx)
		if err != nil || string(m.Data) != fmt.Sprintf(`{"pong":%d}`, i) {
			t.Fatalf("reply %s, %v", m.Data, err)
		}
		if in.Exited() {
			t.Fatalf("exited with its own message listener")
		}
	}
	in.Channel.Close() // disconnect: the app has nothing left
	if err := waitExit(t, in, 20*time.Second); err != nil {
		t.Error(err)
	}
}

// rawConn is a keep-alive HTTP/1.1 client connection read by hand, to see
// the Connection header and the moment the server closes.
type rawConn struct {
	c net.Conn // plain TCP or TLS
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

// send writes a GET for path.
func (rc *rawConn) send(path string) error {
	_, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return err
}

// read reads one response and returns its body and its Connection header
// ("close" or "").
func (rc *rawConn) read() (body, connection string, err error) {
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.Close { // Go takes "Connection: close" out of the header
		connection = "close"
	}
	return string(b), connection, err
}

// closed waits for the server to close the connection and returns how long
// that took.
func (rc *rawConn) closed(d time.Duration) (time.Duration, error) {
	t0 := time.Now()
	rc.c.SetReadDeadline(t0.Add(d))
	_, err := rc.r.ReadByte()
	if err == nil {
		return 0, errors.New("data where EOF was expected")
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		return 0, err
	}
	return time.Since(t0), nil
}

// TestNodeDrain checks the drain step by step: on shutdown a request in
// flight finishes and gets Connection: close; a keep-alive connection that
// sends its next request within the grace period is answered with
// Connection: close; one that stays idle is closed after the grace period;
// the socket keeps accepting for the other instance; then the app exits 0.
func TestNodeDrain(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	const grace = 600 * time.Millisecond
	env := []string{"KIN_IDLE_GRACE_MS=" + strconv.Itoa(int(grace/time.Millisecond))}
	old := startNode(t, "testdata/drain.js", env, []*cluster.Socket{s})
	waitListening(t, ctx, old)
	oldPID := strconv.Itoa(old.Process.Pid)

	// Three keep-alive connections to the old instance, each used once.
	var conns []*rawConn
	for len(conns) < 3 {
		rc := dialRaw(t, s.Addr().String())
		if err := rc.send("/"); err != nil {
			t.Fatal(err)
		}
		body, conn, err := rc.read()
		if err != nil {
			t.Fatal(err)
		}
		if body != oldPID || strings.EqualFold(conn, "close") {
			t.Fatalf("before the drain: body %q, Connection %q", body, conn)
		}
		conns = append(conns, rc)
	}
	inflight, reuse, idle := conns[0], conns[1], conns[2]
	if err := inflight.send("/slow?ms=500"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the slow request reach the app: nothing to poll for
	t0 := time.Now()
	if err := old.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
		t.Fatal(err)
	}

	// The request in flight completes, with Connection: close, then closes.
	body, conn, err := inflight.read()
	if err != nil || body != oldPID || !strings.EqualFold(conn, "close") {
		t.Errorf("request in flight: body %q, Connection %q, %v", body, conn, err)
	}
	if _, err := inflight.closed(5 * time.Second); err != nil {
		t.Errorf("connection of the request in flight: %v", err)
	}
	// The next request on a keep-alive connection, within the grace.
	if err := reuse.send("/"); err != nil {
		t.Fatal(err)
	}
	body, conn, err = reuse.read()
	if err != nil || body != oldPID || !strings.EqualFold(conn, "close") {
		t.Errorf("next request on a keep-alive connection: body %q, Connection %q, %v", body, conn, err)
	}
	if _, err := reuse.closed(5 * time.Second); err != nil {
		t.Errorf("keep-alive connection after its last response: %v", err)
	}
	// New connections go to the socket, still open: nobody serves them
	// until a new instance starts, but none is refused.
	c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("connect during the drain: %v", err)
	}
	c.Close()
	// The idle connection is closed after the grace period, not before.
	if _, err := idle.closed(10 * time.Second); err != nil {
		t.Errorf("idle connection: %v", err)
	}
	if d := time.Since(t0); d < grace {
		t.Errorf("idle connection closed after %v, before the grace period of %v", d, grace)
	}
	if err := waitExit(t, old, 10*time.Second); err != nil {
		t.Errorf("drained app's exit: %v", err)
	}

	// A new instance serves what queued meanwhile.
	n := startNode(t, "testdata/drain.js", env, []*cluster.Socket{s})
	waitListening(t, ctx, n)
	if body, err := get(ctx, url(s)); err != nil || body != strconv.Itoa(n.Process.Pid) {
		t.Errorf("GET from the new instance: %q, %v", body, err)
	}
}

// TestNodeDrainStopSignal: SIGTERM drains an app that has no handler for
// it and exits 0; an app's own handler is left to do its job; an app with
// its own message listener drains on shutdown, says "drained" and is left
// running for the stop signal.
func TestNodeDrainStopSignal(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})

	// No handler: drain, exit 0, and a request in flight completes.
	in := startNode(t, "testdata/drain.js", nil, []*cluster.Socket{s})
	waitListening(t, ctx, in)
	rc := dialRaw(t, s.Addr().String())
	rc.send("/slow?ms=400")
	time.Sleep(100 * time.Millisecond) // let the request reach the app: nothing to poll for
	in.Signal(syscall.SIGTERM)
	if body, conn, err := rc.read(); err != nil || body != strconv.Itoa(in.Process.Pid) || !strings.EqualFold(conn, "close") {
		t.Errorf("request in flight at SIGTERM: %q, Connection %q, %v", body, conn, err)
	}
	if err := waitExit(t, in, 10*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}

	// The app's own SIGTERM handler.
	in = startNode(t, "testdata/drain.js", nil, []*cluster.Socket{s}, "sigterm-handler")
	waitListening(t, ctx, in)
	in.Signal(syscall.SIGTERM)
	var ee *proc.ExitError
	if err := waitExit(t, in, 10*time.Second); !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("exit with the app's own SIGTERM handler: %v, want status 7", err)
	}

	// The app's own message listener: shutdown drains, then "drained".
	in = startNode(t, "testdata/drain.js", nil, []*cluster.Socket{s}, "message-listener")
	waitListening(t, ctx, in)
	in.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown})
	m, err := in.Channel.Recv(ctx)
	if err != nil || string(m.Data) != `{"kin":"drained"}` {
		t.Fatalf("after shutdown: %s, %v", m.Data, err)
	}
	if in.Exited() {
		t.Fatalf("exited though it listens for messages")
	}
	in.Signal(syscall.SIGTERM) // kin's stop signal: already drained, exit 0
	if err := waitExit(t, in, 10*time.Second); err != nil {
		t.Errorf("exit after drained + SIGTERM: %v", err)
	}
}

// loadStats counts the outcomes of a load run.
type loadStats struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	byPID      map[string]int
	errs       []string
}

// runLoad sends requests to url from workers goroutines, each looping on a
// keep-alive connection, until ctx ends. The requests are POSTs without a
// body: Go's transport does not retry them, so every failure shows.
func runLoad(ctx context.Context, url string, workers int, st *loadStats) (wait func()) {
	st.byPID = map[string]int{}
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", url, nil)
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					st.failed.Add(1)
					st.mu.Lock()
					if len(st.errs) < 10 {
						st.errs = append(st.errs, err.Error())
					}
					st.mu.Unlock()
					continue
				}
				st.ok.Add(1)
				st.mu.Lock()
				st.byPID[string(body)]++
				st.mu.Unlock()
			}
		}()
	}
	return func() {
		wg.Wait()
		tr.CloseIdleConnections()
	}
}

// TestZeroDropReload: two Node instances under 50 keep-alive connections;
// each is replaced in turn (start a new one, wait until it listens, send
// the old one shutdown, wait until it exits by itself with status 0). Not a
// single request may fail.
func TestZeroDropReload(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	olds := []*instance{
		startNode(t, exampleNode(t), nil, []*cluster.Socket{s}),
		startNode(t, exampleNode(t), nil, []*cluster.Socket{s}),
	}
	for _, in := range olds {
		waitListening(t, ctx, in)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var st loadStats
	wait := runLoad(loadCtx, url(s), 50, &st)
	defer wait()
	// progress lets the load run for at least d and n more answers.
	progress := func(d time.Duration, n int64) {
		t.Helper()
		target := st.ok.Load() + n
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		kintest.WaitFor(t, 20*time.Second, fmt.Sprintf("%d more answers", n), func() bool { return st.ok.Load() >= target })
	}
	progress(700*time.Millisecond, 500)
	var news []int
	for _, old := range olds {
		n := startNode(t, exampleNode(t), nil, []*cluster.Socket{s})
		waitListening(t, ctx, n)
		news = append(news, n.Process.Pid)
		t0 := time.Now()
		if err := old.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(t, old, 15*time.Second); err != nil {
			t.Errorf("old instance %d: %v, want a clean exit by itself", old.Process.Pid, err)
		}
		t.Logf("pid %d drained and exited in %v", old.Process.Pid, time.Since(t0).Round(time.Millisecond))
		progress(700*time.Millisecond, 500)
	}
	stopLoad()
	wait()
	t.Logf("%d answers, %d failed; by pid: %v (new: %v)", st.ok.Load(), st.failed.Load(), st.byPID, news)
	if f := st.failed.Load(); f != 0 {
		t.Errorf("%d requests failed during the reloads; first errors: %q", f, st.errs)
	}
	for _, p := range news {
		if st.byPID[strconv.Itoa(p)] == 0 {
			t.Errorf("new instance %d served nothing", p)
		}
	}
}

// TestNodeHTTPS: an HTTPS server is adopted too, and its drain answers the
// next request with Connection: close and closes an idle TLS connection
// after the grace period.
func TestNodeHTTPS(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	keyFile, certFile, pool := selfSigned(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	env := []string{"TLS_KEY=" + keyFile, "TLS_CERT=" + certFile, "KIN_IDLE_GRACE_MS=300"}
	in := startNode(t, "testdata/https.js", env, []*cluster.Socket{s})
	waitListening(t, ctx, in)
	pid := strconv.Itoa(in.Process.Pid)

	dial := func() *rawConn {
		c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		rc := &rawConn{c: c, r: bufio.NewReader(c)}
		if err := rc.send("/"); err != nil {
			t.Fatal(err)
		}
		if body, conn, err := rc.read(); err != nil || body != pid || conn != "" {
			t.Fatalf("before the drain: %q, Connection %q, %v", body, conn, err)
		}
		return rc
	}
	reuse, idle := dial(), dial()
	if err := in.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
		t.Fatal(err)
	}
	if err := reuse.send("/"); err != nil {
		t.Fatal(err)
	}
	if body, conn, err := reuse.read(); err != nil || body != pid || conn != "close" {
		t.Errorf("next request during the drain: %q, Connection %q, %v", body, conn, err)
	}
	if _, err := idle.closed(10 * time.Second); err != nil {
		t.Errorf("idle TLS connection: %v", err)
	}
	if err := waitExit(t, in, 10*time.Second); err != nil {
		t.Error(err)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (keyFile, certFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kin test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return keyFile, certFile, pool
}

// TestNodeClusterModule: an app running Node's cluster module itself works
// under kin: the primary's round-robin listener uses kin's socket, both
// workers serve, and shutdown ends the primary with status 0.
func TestNodeClusterModule(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	in := startNode(t, "testdata/node-cluster.js", nil, []*cluster.Socket{s})
	waitListening(t, ctx, in)
	seen := map[string]bool{}
	kintest.WaitFor(t, 30*time.Second, "two workers to answer", func() bool {
		body, err := get(ctx, url(s))
		if err == nil {
			seen[body] = true
		}
		return len(seen) >= 2
	})
	if seen[strconv.Itoa(in.Process.Pid)] {
		t.Errorf("the primary answered: %v", seen)
	}
	if err := in.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, in, 15*time.Second); err != nil {
		t.Error(err)
	}
}

// TestNodeDrainTimeout: a request that outlasts KIN_DRAIN_TIMEOUT_MS is
// cut, and the app exits.
func TestNodeDrainTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	const timeout = 500 * time.Millisecond
	in := startNode(t, "testdata/drain.js", []string{"KIN_DRAIN_TIMEOUT_MS=500"}, []*cluster.Socket{s})
	waitListening(t, ctx, in)
	rc := dialRaw(t, s.Addr().String())
	rc.send("/slow?ms=60000")
	time.Sleep(100 * time.Millisecond) // let the request reach the app: nothing to poll for
	t0 := time.Now()
	in.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown})
	if err := waitExit(t, in, 10*time.Second); err != nil {
		t.Error(err)
	}
	if d := time.Since(t0); d < timeout {
		t.Errorf("exited after %v, before the drain timeout %v", d, timeout)
	}
	if _, err := rc.closed(5 * time.Second); err != nil {
		t.Errorf("the cut connection: %v", err)
	}
}

// TestNodeWorkerThread: only the main thread takes kin's sockets.
func TestNodeWorkerThread(t *testing.T) {
	t.Parallel()
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	in := start(t, startOpts{
		path:    kintest.Node(t),
		args:    []string{"testdata/worker-thread.js"},
		preload: preload(t),
		channel: true,
		stdout:  true,
	}, s)
	out, _ := io.ReadAll(in.out)
	if err := in.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("worker: EADDRINUSE\nmain: %d\n", s.Port()); string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
