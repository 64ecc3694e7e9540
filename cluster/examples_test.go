package cluster_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/cluster"
	"github.com/kinproc/kin/internal/kintest"
)

// TestExamplePython: two instances of the standard-library Python server
// share one kin socket, and both serve.
func TestExamplePython(t *testing.T) {
	t.Parallel()
	py := kintest.Python(t)
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	script := filepath.Join(kintest.RepoRoot(t), "examples", "cluster-python", "server.py")
	a := start(t, startOpts{path: py, args: []string{script}}, s)
	b := start(t, startOpts{path: py, args: []string{script}}, s)
	waitServedBy(t, url(s), a.Process.Pid, b.Process.Pid)
}

// TestExampleGo: two instances of the Go example (cluster.Listen) share one
// kin socket, both serve, and each exits 0 on SIGTERM.
func TestExampleGo(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "cluster-go")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-o", bin, "./examples/cluster-go")
	build.Dir = kintest.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := bind(t, cluster.Spec{Host: "127.0.0.1"})
	a := start(t, startOpts{path: bin}, s)
	b := start(t, startOpts{path: bin}, s)
	waitServedBy(t, url(s), a.Process.Pid, b.Process.Pid)
	for _, in := range []*instance{a, b} {
		in.Signal(syscall.SIGTERM)
		if err := waitExit(t, in, 10*time.Second); err != nil {
			t.Errorf("exit on SIGTERM: %v", err)
		}
	}

	// Alone, it binds $PORT.
	port := freePort(t)
	c := start(t, startOpts{path: bin, env: []string{"PORT=" + strconv.Itoa(port)}})
	waitServedBy(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/", c.Process.Pid)
}
