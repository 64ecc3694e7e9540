package supervisor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RestartPolicy says when an instance that exited is started again.
type RestartPolicy string

// Restart policies. The zero value means RestartAlways.
const (
	RestartAlways    RestartPolicy = "always"     // whatever the exit status
	RestartOnFailure RestartPolicy = "on-failure" // after a non-zero exit or a signal
	RestartNever     RestartPolicy = "never"
)

// ReadyKind says how the supervisor learns that a new instance is ready.
type ReadyKind string

// Readiness kinds. The zero value means ReadyAlive with a zero Delay for an
// app without WaitReady or Port, and ReadyListening for an app with a Port.
const (
	// ReadyAlive: the instance is ready once it has stayed alive for
	// Ready.Delay.
	ReadyAlive ReadyKind = "alive"
	// ReadyIPC: the instance sends "ready" (PM2's process.send('ready')) or
	// {"kin":"ready"} on its IPC channel.
	ReadyIPC ReadyKind = "ipc"
	// ReadyNotify: the instance writes READY=1 to $NOTIFY_SOCKET (systemd's
	// sd_notify).
	ReadyNotify ReadyKind = "notify"
	// ReadyListening: the instance reports {"kin":"listening"} on its IPC
	// channel (kin's Node preload does so for unmodified apps), or, for apps
	// without a channel, accepts connections on the app's socket.
	ReadyListening ReadyKind = "listening"
	// ReadyHTTP: a GET of Ready.URL answers 2xx or 3xx.
	ReadyHTTP ReadyKind = "http"
	// ReadyTCP: a TCP connect to Ready.Address succeeds.
	ReadyTCP ReadyKind = "tcp"
)

// Readiness is how and how long the supervisor waits for a new instance to be
// ready. The zero value is described at ReadyKind.
type Readiness struct {
	Kind ReadyKind `json:"kind,omitempty"`
	// URL is the address probed by ReadyHTTP ("http://127.0.0.1:3000/health").
	URL string `json:"url,omitempty"`
	// Address is what ReadyTCP dials ("127.0.0.1:3000").
	Address string `json:"address,omitempty"`
	// Delay is how long ReadyAlive waits; zero means ready at once.
	Delay Duration `json:"delay,omitempty"`
	// Timeout bounds the wait (PM2's listen_timeout); zero means 30 s. An
	// instance that is not ready in time is stopped and counts as a failed
	// start; during a reload the old instance is kept.
	Timeout Duration `json:"timeout,omitempty"`
}

// AppSpec is everything the supervisor needs to run an app: one or more
// instances of one command. It is what a config file, a PM2 ecosystem file or
// the flags of `kin start` turn into, and what the daemon keeps in its state
// file. The zero value of each field is documented beside it; Validate fills
// nothing in and reports the first field that is wrong.
type AppSpec struct {
	// Name identifies the app; required, unique within a supervisor. It may
	// hold letters, digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Command is the program and its arguments, already resolved: for a
	// script, the interpreter comes first ("node", "app.js", args…).
	// Required.
	Command []string `json:"command"`
	// Script is the script or binary the user named, kept for display; empty
	// means Command[0].
	Script string `json:"script,omitempty"`
	// Interpreter is the interpreter kin chose or the user named ("node",
	// "python3"); empty for binaries. An app whose interpreter is node gets
	// Node's IPC channel variables and kin's Node preload.
	Interpreter string `json:"interpreter,omitempty"`
	// Cwd is the working directory; empty means the supervisor's.
	Cwd string `json:"cwd,omitempty"`
	// Env is the app's whole environment on top of a minimal base (PATH,
	// HOME, USER, LANG, TZ and TERM from the daemon). It replaces, never
	// merges with, the previous Env when the app is started again from a
	// changed config.
	Env map[string]string `json:"env,omitempty"`
	// CallerEnv is the environment of whoever started the app (`kin start`
	// passes its own, as PM2 does), under Env. Unlike Env it is kept when
	// the app is started again with a different one, unless the start asks
	// to update it (StartOptions.UpdateEnv, `kin start --update-env`): a
	// different shell is no reason to restart an app. Nil means none.
	CallerEnv map[string]string `json:"caller_env,omitempty"`
	// Instances is how many copies run; 0 means 1, -1 means one per CPU
	// ("max").
	Instances int `json:"instances,omitempty"`
	// InstanceVar names the variable holding each instance's index (0, 1, …);
	// empty means NODE_APP_INSTANCE. KIN_INSTANCE is always set too.
	InstanceVar string `json:"instance_var,omitempty"`

	// Port, when not zero, makes the supervisor bind a TCP listening socket
	// on it and hand it to every instance (cluster mode, see package
	// cluster). The socket stays open across restarts and reloads.
	Port int `json:"port,omitempty"`
	// Host is the address Port is bound on; empty means all interfaces.
	Host string `json:"host,omitempty"`

	// Restart is the restart policy; empty means RestartAlways.
	Restart RestartPolicy `json:"restart,omitempty"`
	// RestartDelay is waited before every restart (PM2's restart_delay); zero
	// means none beyond the backoff.
	RestartDelay Duration `json:"restart_delay,omitempty"`
	// Backoff is the first delay after a quick crash; it doubles with each
	// consecutive quick crash, with jitter, up to 30 s (PM2's
	// exp_backoff_restart_delay). Zero means 100 ms.
	Backoff Duration `json:"backoff,omitempty"`
	// MinUptime is how long an instance must run for its exit to count as
	// stable rather than a quick crash; zero means 1 s.
	MinUptime Duration `json:"min_uptime,omitempty"`
	// MaxRestarts is the restart budget: more than this many restarts within
	// RestartWindow, or more than this many quick crashes in a row (runs
	// shorter than MinUptime), put the instance in StatusErrored. Zero means
	// 15; -1 means unlimited.
	MaxRestarts int `json:"max_restarts,omitempty"`
	// RestartWindow is the budget's window; zero means 60 s.
	RestartWindow Duration `json:"restart_window,omitempty"`

	// StopSignal is sent to the instance's process group to stop it ("SIGINT");
	// empty means SIGTERM. Node apps get an IPC "shutdown" message first.
	StopSignal string `json:"stop_signal,omitempty"`
	// KillTimeout is how long a stop waits after StopSignal before SIGKILL;
	// zero means 5 s.
	KillTimeout Duration `json:"kill_timeout,omitempty"`

	// WaitReady makes starts and reloads wait for Ready (PM2's wait_ready,
	// which means ReadyIPC when Ready.Kind is empty).
	WaitReady bool `json:"wait_ready,omitempty"`
	// Ready says how readiness is detected; see Readiness.
	Ready Readiness `json:"ready,omitempty"`

	// MaxMemory restarts an instance whose process tree uses more than this
	// many bytes of RSS (PM2's max_memory_restart); zero means no limit.
	MaxMemory int64 `json:"max_memory,omitempty"`
	// MemoryLimit is a hard limit in bytes on the instance's whole process
	// tree. Where the daemon may create memory cgroups (cgroup v2
	// memory.max, or the v1 memory controller) each run of the instance
	// gets its own, the kernel OOM-kills it above the limit and that is
	// reported as the cause; the cgroup also takes every process left in it
	// when the instance ends, double-forked ones included. Elsewhere (or
	// with Config.NoCgroups) kin samples RSS and SIGKILLs the group above
	// it. Zero means none.
	MemoryLimit int64 `json:"memory_limit,omitempty"`

	// Cron restarts the app on a schedule (five-field cron expression, or
	// "@every 1h"); empty means never.
	Cron string `json:"cron,omitempty"`
	// Watch restarts the app when a file under these paths (relative to Cwd)
	// changes; empty means no watching.
	Watch []string `json:"watch,omitempty"`
	// WatchIgnore lists glob patterns (matched against base names and paths
	// relative to Cwd) that Watch ignores; node_modules and .git are always
	// ignored.
	WatchIgnore []string `json:"watch_ignore,omitempty"`

	// OutFile and ErrorFile override where stdout and stderr are logged;
	// empty means $KIN_HOME/logs/<name>-<instance>.out.log / .err.log.
	OutFile   string `json:"out_file,omitempty"`
	ErrorFile string `json:"error_file,omitempty"`

	// DependsOn names apps that must be ready before this one starts.
	DependsOn []string `json:"depends_on,omitempty"`

	// Queue, when set, makes the app a consumer of a job queue: each
	// instance runs `kin queue work` (Config.QueueWorker) with Command as
	// the worker program, Queue.Concurrency processes of it. Nil means an
	// ordinary app.
	Queue *QueueSpec `json:"queue,omitempty"`

	// Source is where the spec came from ("kin.yaml", "cli"), for describe.
	Source string `json:"source,omitempty"`
}

// Validate reports the first thing wrong with s, naming the field.
func (s *AppSpec) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("supervisor: app has no name")
	case !validName(s.Name):
		return fmt.Errorf("supervisor: app name %q: use letters, digits, '-', '_' and '.'", s.Name)
	case len(s.Command) == 0 || s.Command[0] == "":
		return fmt.Errorf("supervisor: app %s: no command", s.Name)
	case s.Instances < -1:
		return fmt.Errorf("supervisor: app %s: instances %d: want a count, or -1 for one per CPU", s.Name, s.Instances)
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("supervisor: app %s: port %d out of range", s.Name, s.Port)
	case s.MaxRestarts < -1:
		return fmt.Errorf("supervisor: app %s: max_restarts %d: want a count, or -1 for unlimited", s.Name, s.MaxRestarts)
	case s.MaxMemory < 0 || s.MemoryLimit < 0:
		return fmt.Errorf("supervisor: app %s: negative memory limit", s.Name)
	}
	switch s.Restart {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("supervisor: app %s: restart %q: want always, on-failure or never", s.Name, s.Restart)
	}
	switch s.Ready.Kind {
	case "", ReadyAlive, ReadyIPC, ReadyNotify, ReadyListening:
	case ReadyHTTP:
		if s.Ready.URL == "" {
			return fmt.Errorf("supervisor: app %s: ready kind http needs ready.url", s.Name)
		}
	case ReadyTCP:
		if s.Ready.Address == "" {
			return fmt.Errorf("supervisor: app %s: ready kind tcp needs ready.address", s.Name)
		}
	default:
		return fmt.Errorf("supervisor: app %s: ready kind %q: want alive, ipc, notify, listening, http or tcp", s.Name, s.Ready.Kind)
	}
	if s.Cron != "" {
		if err := ParseCron(s.Cron); err != nil {
			return fmt.Errorf("supervisor: app %s: %w", s.Name, err)
		}
	}
	if s.StopSignal != "" {
		if _, err := ParseSignal(s.StopSignal); err != nil {
			return fmt.Errorf("supervisor: app %s: stop_signal: %w", s.Name, err)
		}
	}
	if s.Queue != nil {
		if err := s.Queue.check(); err != nil {
			return fmt.Errorf("supervisor: app %s: %w", s.Name, err)
		}
	}
	for _, d := range []Duration{s.RestartDelay, s.Backoff, s.MinUptime, s.RestartWindow, s.KillTimeout, s.Ready.Delay, s.Ready.Timeout} {
		if d < 0 {
			return fmt.Errorf("supervisor: app %s: negative duration %v", s.Name, d)
		}
	}
	return nil
}

func validName(name string) bool {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return name != "." && name != ".." && name != "all"
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s"); it also reads a number as milliseconds, as PM2's files
// hold them. The zero value is zero.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*d = Duration(time.Duration(v * float64(time.Millisecond)))
		return nil
	case string:
		p, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*d = p
		return nil
	}
	return fmt.Errorf("duration %s: want a string such as \"5s\" or milliseconds", b)
}

// ParseDuration reads a Go duration ("1m30s") or a bare number of
// milliseconds ("1500").
func ParseDuration(s string) (Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return Duration(time.Duration(n * float64(time.Millisecond))), nil
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 500ms, 5s, 1m, or milliseconds", s)
	}
	return Duration(p), nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseSize reads a byte size: a number with an optional unit K, M, G (powers
// of 1024, also KB/MB/GB, KiB/MiB/GiB, case-insensitive), as PM2's
// max_memory_restart accepts ("512M", "1G", "300000").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want e.g. 512M, 1G or a number of bytes", s)
	}
	return int64(f * float64(mult)), nil
}
