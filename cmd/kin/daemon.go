package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kinproc/kin/bus"
	"github.com/kinproc/kin/internal/natsd"
	"github.com/kinproc/kin/supervisor"
)

func init() {
	register(&command{name: "daemon", summary: "run the daemon in the foreground", run: runDaemon})
	register(&command{name: "kill", summary: "stop every app and the daemon", run: runKill})
	register(&command{name: "startup", summary: "print a systemd unit that runs the daemon at boot", run: runStartup})
}

const daemonAbout = `Run the kin daemon in the foreground: it serves $KIN_HOME/kin.sock (default
~/.kin) and runs the apps. The other commands start it in the background on
first use; run it yourself under systemd (kin startup) or to watch its log.
SIGTERM or SIGINT stops every app, then the daemon.

Read when the daemon starts (a daemon started by another command gets that
command's environment):
  KIN_HOME          the home directory (default ~/.kin)
  KIN_LOG_MAX_SIZE  rotate an app's log file once it grows past this size
                    (512K, 10M, 1G; default 10M)
  KIN_LOG_KEEP      how many rotated files each log keeps (default 5; 0 keeps none)
  KIN_NATS_URL      the NATS servers of the queue and bus (comma-separated);
                    unset means the embedded server, started on first use
                    with its store in $KIN_HOME/nats
  KIN_NATS_LOG      set to anything: the embedded NATS server logs to stderr`

func runDaemon(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "daemon", "[--resurrect]", daemonAbout)
	resurrect := fs.Bool("resurrect", false, "start the apps saved by kin save")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	home, err := kinHome()
	if err != nil {
		return err
	}
	logMaxSize, logKeep, err := logLimits()
	if err != nil {
		return err
	}
	closeInheritedFDs()
	ctl, err := supervisor.ListenControl(home)
	if err != nil {
		if errors.Is(err, supervisor.ErrDaemonRunning) {
			return &exitError{code: exitFailure, err: fmt.Errorf("a daemon already runs for %s (kin kill stops it)", home)}
		}
		return err
	}
	defer ctl.Close()
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	var natsLog io.Writer
	if os.Getenv("KIN_NATS_LOG") != "" {
		natsLog = e.stderr
	}
	nm, err := natsd.New(natsd.Config{Home: home, EnvURLs: natsd.ParseURLs(os.Getenv("KIN_NATS_URL")), Log: logger, ServerLog: natsLog})
	if err != nil {
		return err
	}
	defer nm.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := supervisor.New(supervisor.Config{
		Home: home, Logger: logger, LogMaxSize: logMaxSize, LogKeep: logKeep,
		QueueWorker: []string{exe, "queue", "work"},
		Bus:         daemonBus(nm),
	})
	if err != nil {
		return err
	}
	srv.Start()
	v, _ := versionInfo()
	killed := make(chan struct{})
	var killOnce sync.Once
	httpSrv := &http.Server{
		Handler: srv.Handler(supervisor.HandlerOptions{
			Version: v,
			Kill:    func() { killOnce.Do(func() { close(killed) }) },
			NATS:    nm.Apply,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ctl) }()
	logger.Info("kin daemon ready", "home", home, "pid", os.Getpid(), "version", v)
	if *resurrect {
		if _, err := srv.Resurrect(ctx); err != nil {
			logger.Warn("resurrect", "err", err)
		}
	}
	select {
	case <-ctx.Done():
		logger.Info("signal: stopping every app")
	case <-killed:
		logger.Info("kill: stopping every app")
	case err := <-served:
		logger.Error("control socket", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = srv.Shutdown(sctx)
	hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer hcancel()
	httpSrv.Shutdown(hctx)
	logger.Info("kin daemon stopped")
	return err
}

// daemonBus gives apps the bus on the daemon's NATS connection, starting
// the embedded server when an app first uses it.
func daemonBus(nm *natsd.Manager) func(context.Context) (*bus.Bus, error) {
	var mu sync.Mutex
	var b *bus.Bus
	return func(ctx context.Context) (*bus.Bus, error) {
		mu.Lock()
		defer mu.Unlock()
		if b != nil {
			return b, nil
		}
		c, err := nm.Client(ctx)
		if err != nil {
			return nil, err
		}
		b = bus.New(c.Conn())
		return b, nil
	}
}

// logLimits reads $KIN_LOG_MAX_SIZE and $KIN_LOG_KEEP as supervisor.Config's
// LogMaxSize and LogKeep; unset means the defaults (zero).
func logLimits() (maxSize int64, keep int, err error) {
	if v := os.Getenv("KIN_LOG_MAX_SIZE"); v != "" {
		maxSize, err = supervisor.ParseSize(v)
		if err == nil && maxSize <= 0 {
			err = errors.New("want a size above zero")
		}
		if err != nil {
			return 0, 0, usageErrorf("daemon: KIN_LOG_MAX_SIZE=%s: %v", v, err)
		}
	}
	if v := os.Getenv("KIN_LOG_KEEP"); v != "" {
		keep, err = strconv.Atoi(v)
		if err != nil || keep < 0 {
			return 0, 0, usageErrorf("daemon: KIN_LOG_KEEP=%s: want a number of files, 0 or more", v)
		}
		if keep == 0 {
			keep = -1 // Config's zero is the default; negative keeps none
		}
	}
	return maxSize, keep, nil
}

func runKill(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "kill", "", "Stop every app (gracefully) and the daemon.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Kill(ctx); err != nil {
		if isNoDaemon(err) {
			fmt.Fprintln(e.stdout, "no daemon running")
			return nil
		}
		return apiError(err)
	}
	fmt.Fprintln(e.stdout, "daemon stopped")
	return nil
}

func runStartup(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "startup", "", `Print a systemd unit that runs the daemon at boot and starts the apps
saved with kin save. Install it with:
  kin startup | sudo tee /etc/systemd/system/kin.service && sudo systemctl enable --now kin`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	home, err := kinHome()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `[Unit]
Description=kin process manager
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=%s
Environment=KIN_HOME=%s
ExecStart=%s daemon --resurrect
ExecStop=%s kill
KillMode=mixed
TimeoutStopSec=120
Restart=on-failure

[Install]
WantedBy=multi-user.target
`, u.Username, home, exe, exe)
	return nil
}

// closeInheritedFDs marks every descriptor above stderr close-on-exec, so
// that what the daemon's own parent leaked to it (a shell's or a CI
// runner's pipes) is not passed on to every app it starts.
func closeInheritedFDs() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
