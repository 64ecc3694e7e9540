// Package client is the Go client of the kin daemon's control API (see
// supervisor.Handler): what the kin CLI uses, and what other programs can
// use to manage apps.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/kinproc/kin/supervisor"
)

// ErrNoDaemon is returned when nothing answers on the control socket.
var ErrNoDaemon = errors.New("client: no kin daemon is running")

// APIError is a non-2xx answer of the daemon.
type APIError struct {
	Status   int
	Message  string
	NotFound bool
}

// Error returns the daemon's message.
func (e *APIError) Error() string { return e.Message }

// Client talks to the daemon of one home directory. The zero value is not
// usable; create it with New.
type Client struct {
	home string
	http *http.Client
}

// New returns a client for the daemon of home ($KIN_HOME). It does not
// connect until a call is made, and then connects once per call (a Unix
// socket connects in microseconds; see directTransport).
func New(home string) *Client {
	tr := directTransport{sock: supervisor.SocketPath(home)}
	return &Client{home: home, http: &http.Client{Transport: tr}}
}

// Home returns the home directory the client talks to.
func (c *Client) Home() string { return c.home }

// Close releases idle connections. Each call opens its own connection and
// closes it with the answer, so there are none between calls; Close is
// kept so that a caller need not know that.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://kin"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w (%s)", ErrNoDaemon, supervisor.SocketPath(c.home))
		}
		return fmt.Errorf("client: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("client: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e supervisor.ErrorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("daemon answered %s", resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error, NotFound: e.NotFound}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("client: bad answer from daemon: %w", err)
		}
	}
	return nil
}

// Ping asks the daemon who it is.
func (c *Client) Ping(ctx context.Context) (supervisor.PingResponse, error) {
	var out supervisor.PingResponse
	err := c.do(ctx, http.MethodGet, "/v1/ping", nil, &out)
	return out, err
}

// List returns every instance.
func (c *Client) List(ctx context.Context) ([]supervisor.InstanceInfo, error) {
	var out []supervisor.InstanceInfo
	err := c.do(ctx, http.MethodGet, "/v1/list", nil, &out)
	return out, err
}

// Describe returns the apps a target names.
func (c *Client) Describe(ctx context.Context, target string) ([]supervisor.AppInfo, error) {
	var out []supervisor.AppInfo
	err := c.do(ctx, http.MethodGet, "/v1/describe?target="+url.QueryEscape(target), nil, &out)
	return out, err
}

// Start starts apps; with wait, it answers once every instance is online.
func (c *Client) Start(ctx context.Context, apps []supervisor.AppSpec, wait bool) ([]supervisor.InstanceInfo, error) {
	return c.StartRequest(ctx, supervisor.StartRequest{Apps: apps, Wait: wait})
}

// StartRequest starts apps as req says (see supervisor.StartRequest).
func (c *Client) StartRequest(ctx context.Context, req supervisor.StartRequest) ([]supervisor.InstanceInfo, error) {
	var out []supervisor.InstanceInfo
	err := c.do(ctx, http.MethodPost, "/v1/start", req, &out)
	return out, err
}

// Stop, Restart, Reload and Delete act on a target (name, id or "all") and
// return the instances afterwards.
func (c *Client) Stop(ctx context.Context, target string) ([]supervisor.InstanceInfo, error) {
	return c.targetOp(ctx, "stop", target)
}

// Restart: see Stop.
func (c *Client) Restart(ctx context.Context, target string) ([]supervisor.InstanceInfo, error) {
	return c.targetOp(ctx, "restart", target)
}

// Reload: see Stop.
func (c *Client) Reload(ctx context.Context, target string) ([]supervisor.InstanceInfo, error) {
	return c.targetOp(ctx, "reload", target)
}

// Delete: see Stop.
func (c *Client) Delete(ctx context.Context, target string) ([]supervisor.InstanceInfo, error) {
	return c.targetOp(ctx, "delete", target)
}

func (c *Client) targetOp(ctx context.Context, op, target string) ([]supervisor.InstanceInfo, error) {
	var out []supervisor.InstanceInfo
	err := c.do(ctx, http.MethodPost, "/v1/"+op, supervisor.TargetRequest{Target: target}, &out)
	return out, err
}

// Scale sets an app's instance count.
func (c *Client) Scale(ctx context.Context, name string, n int) ([]supervisor.InstanceInfo, error) {
	var out []supervisor.InstanceInfo
	err := c.do(ctx, http.MethodPost, "/v1/scale", supervisor.ScaleRequest{Name: name, Instances: n}, &out)
	return out, err
}

// Signal sends a signal to a target's running instances.
func (c *Client) Signal(ctx context.Context, target, sig string) error {
	return c.do(ctx, http.MethodPost, "/v1/signal", supervisor.SignalRequest{Target: target, Signal: sig}, nil)
}

// Save writes the app list for Resurrect and returns the file's path.
func (c *Client) Save(ctx context.Context) (string, error) {
	var out struct {
		Path string `json:"path"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/save", nil, &out)
	return out.Path, err
}

// Resurrect starts the saved apps.
func (c *Client) Resurrect(ctx context.Context) ([]supervisor.InstanceInfo, error) {
	var out []supervisor.InstanceInfo
	err := c.do(ctx, http.MethodPost, "/v1/resurrect", nil, &out)
	return out, err
}

// Flush empties the target's log files and returns them.
func (c *Client) Flush(ctx context.Context, target string) ([]string, error) {
	var out struct {
		Files []string `json:"files"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/flush", supervisor.TargetRequest{Target: target}, &out)
	return out.Files, err
}

// Kill stops every app and the daemon, and waits until the daemon is gone.
func (c *Client) Kill(ctx context.Context) error {
	ping, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/v1/kill", nil, nil); err != nil {
		return err
	}
	c.Close()
	// The daemon holds the home's lock until it has exited (a zombie, which
	// an init that does not reap leaves behind, holds nothing).
	for {
		if daemonGone(c.home) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: daemon %d still running: %w", ping.PID, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// daemonGone reports whether no process holds the home's daemon lock.
func daemonGone(home string) bool {
	f, err := os.OpenFile(supervisor.LockPath(home), os.O_RDWR, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

// EnsureDaemon returns once a daemon answers for the client's home, starting
// one if none does: exe (the kin binary) run as `exe daemon` in a new
// session, detached, its own output going to home/daemon.log. Several
// callers racing start several daemons, of which exactly one takes the home's
// lock and serves; the others exit. started is true only for the caller
// whose daemon serves.
func (c *Client) EnsureDaemon(ctx context.Context, exe string) (started bool, err error) {
	if _, err := c.Ping(ctx); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNoDaemon) {
		return false, err
	}
	if err := os.MkdirAll(c.home, 0o700); err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	logf, err := os.OpenFile(c.home+"/daemon.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "daemon")
	cmd.Env = append(os.Environ(), "KIN_HOME="+c.home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("client: start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if who, err := c.Ping(ctx); err == nil {
			// Another command's daemon may have won the race for the
			// socket (ours then exits): started says whose answered.
			return who.PID == cmd.Process.Pid, nil
		}
		select {
		case <-exited:
			// Lost the race to another daemon, or failed: the next pings
			// tell which.
			exited = nil
		case <-deadline.C:
			return false, fmt.Errorf("client: the daemon did not answer within 10s; see %s/daemon.log", c.home)
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// NATS makes sure the daemon's NATS server runs (the embedded one starts on
// first use) and returns how to reach it; settings, when not nil, replace
// the daemon's NATS settings first.
func (c *Client) NATS(ctx context.Context, settings *supervisor.NATSSettings) (supervisor.NATSInfo, error) {
	var out supervisor.NATSInfo
	err := c.do(ctx, http.MethodPost, "/v1/nats", supervisor.NATSRequest{Settings: settings}, &out)
	return out, err
}
