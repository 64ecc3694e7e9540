package client_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/client"
)

func TestMain(m *testing.M) { kintest.Main(m) }

func init() {
	kintest.Register("sleep", func([]string) { select {} })
}

// serve runs a supervisor behind its control socket in home, as the daemon
// does, until the test ends or a client kills it.
func serve(t *testing.T, home string) (killed <-chan struct{}) {
	t.Helper()
	ctl, err := supervisor.ListenControl(home)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := supervisor.New(supervisor.Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	k := make(chan struct{})
	var once sync.Once
	hs := &http.Server{Handler: srv.Handler(supervisor.HandlerOptions{Version: "test", Kill: func() { once.Do(func() { close(k) }) }})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ctl)
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-k:
		case <-done:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Shutdown(ctx)
		ctl.Close()
	}()
	t.Cleanup(func() {
		once.Do(func() { close(k) })
		<-stopped
		<-done
	})
	return stopped
}

func shortHome(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestClientAgainstServer(t *testing.T) {
	t.Parallel()
	home := shortHome(t)
	c := client.New(home)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := c.Ping(ctx); !errors.Is(err, client.ErrNoDaemon) {
		t.Fatalf("ping with no daemon: %v, want ErrNoDaemon", err)
	}
	stopped := serve(t, home)
	// A second daemon for the same home is refused.
	if _, err := supervisor.ListenControl(home); !errors.Is(err, supervisor.ErrDaemonRunning) {
		t.Fatalf("second ListenControl: %v", err)
	}
	if fi, err := os.Stat(supervisor.SocketPath(home)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	ping, err := c.Ping(ctx)
	if err != nil || ping.PID != os.Getpid() || ping.Version != "test" {
		t.Fatalf("ping: %+v %v", ping, err)
	}
	exe, argv, _ := kintest.Command("sleep")
	spec := supervisor.AppSpec{Name: "s", Command: append([]string{exe}, argv...), Env: map[string]string{kintest.EnvHelper: "sleep"}, Instances: 2}
	list, err := c.Start(ctx, []supervisor.AppSpec{spec}, true)
	if err != nil || len(list) != 2 || list[0].Status != supervisor.StatusOnline {
		t.Fatalf("start: %+v %v", list, err)
	}
	if _, err := c.Start(ctx, []supervisor.AppSpec{{Name: "bad name!"}}, true); err == nil {
		t.Fatal("invalid spec accepted")
	}
	var ae *client.APIError
	if _, err := c.Stop(ctx, "nope"); !errors.As(err, &ae) || !ae.NotFound {
		t.Fatalf("stop of an unknown app: %v", err)
	}
	apps, err := c.Describe(ctx, "s")
	if err != nil || len(apps) != 1 || len(apps[0].Instances) != 2 {
		t.Fatalf("describe: %+v %v", apps, err)
	}
	if list, err = c.Scale(ctx, "s", 1); err != nil || len(list) != 1 {
		t.Fatalf("scale: %+v %v", list, err)
	}
	pid := list[0].PID
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	<-stopped
	kintest.WaitGone(t, 5*time.Second, pid)
}
