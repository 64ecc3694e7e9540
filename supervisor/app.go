package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kinproc/kin/cluster"
	"github.com/kinproc/kin/proc"
)

// app is one AppSpec and its instances. Fields are guarded by Server.mu;
// spec is replaced, never changed in place.
type app struct {
	srv   *Server
	name  string
	spec  *AppSpec
	slots []*slot
	want  bool // the app should be running
	sock  *listenSocket
	sched *schedule // cron and watch restarts
	// created orders `kin ls`.
	created time.Time
}

func (a *app) specSnapshot() *AppSpec {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	return a.spec
}

func (a *app) readyTimeout() time.Duration {
	if d := a.specSnapshot().Ready.Timeout.D(); d > 0 {
		return d
	}
	return DefaultReadyTimeout
}

func (a *app) killTimeout() time.Duration {
	if d := a.specSnapshot().KillTimeout.D(); d > 0 {
		return d
	}
	return DefaultKillTimeout
}

func (a *app) restartPolicy() RestartPolicy {
	if p := a.specSnapshot().Restart; p != "" {
		return p
	}
	return RestartAlways
}

// instanceCount is how many instances spec asks for.
func (s *Server) instanceCount(spec *AppSpec) int {
	switch {
	case spec.Instances == -1:
		return s.cpus()
	case spec.Instances <= 0:
		return 1
	}
	return spec.Instances
}

func (s *Server) cpus() int {
	if s.cfg.CPUs > 0 {
		return s.cfg.CPUs
	}
	return runtime.NumCPU()
}

// spawn starts a process for sl with the app's current spec.
func (a *app) spawn(sl *slot) (*process, error) {
	s := a.srv
	s.mu.Lock()
	spec, sock := a.spec, a.sock
	s.mu.Unlock()
	if spec.Queue != nil {
		var err error
		if spec, err = s.queueApp(spec); err != nil {
			return nil, err
		}
	}
	ss := spawnSpec{
		spec:    spec,
		id:      sl.id,
		env:     s.instanceEnv(spec, sl),
		outPath: s.logPath(spec, sl, "out"),
		errPath: s.logPath(spec, sl, "err"),
		openLog: s.openLog,
		bus:     s.busLink(),
		logf:    s.logf,

		noCgroups: s.cfg.NoCgroups,
	}
	if sock != nil {
		ss.activate = func(cmd *proc.Cmd) error { return sock.activate(cmd) }
		if isNode(spec) {
			path, err := s.nodePreload()
			if err != nil {
				return nil, err
			}
			ss.preload = path
			ss.env = withNodePreload(ss.env, path)
			if !hasVar(ss.env, "KIN_DRAIN_TIMEOUT_MS") {
				// The preload closes what is left of its connections and
				// exits a little before the kill timeout's SIGKILL.
				d := a.killTimeout() - a.killTimeout()/10
				ss.env = append(ss.env, fmt.Sprintf("KIN_DRAIN_TIMEOUT_MS=%d", d.Milliseconds()))
			}
		}
	}
	p, err := startProcess(ss)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// instanceEnv is an instance's whole environment: a minimal base from the
// supervisor's own, the app's Env, and the instance variables.
func (s *Server) instanceEnv(spec *AppSpec, sl *slot) []string {
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TERM", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range spec.CallerEnv {
		env[k] = v
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	iv := spec.InstanceVar
	if iv == "" {
		iv = "NODE_APP_INSTANCE"
	}
	idx := strconv.Itoa(sl.index)
	env[iv] = idx
	env["KIN_INSTANCE"] = idx
	env["KIN_APP_NAME"] = spec.Name
	env["KIN_ID"] = strconv.Itoa(sl.id)
	if isPython(spec) {
		if _, set := spec.Env["PYTHONUNBUFFERED"]; !set {
			// Lines reach the log as they are printed, as under a terminal.
			env["PYTHONUNBUFFERED"] = "1"
		}
	}
	if spec.Port > 0 {
		if _, set := spec.Env["PORT"]; !set {
			env["PORT"] = strconv.Itoa(spec.Port)
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// withNodePreload adds `--require path` to NODE_OPTIONS.
func withNodePreload(env []string, path string) []string {
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "NODE_OPTIONS="); ok {
			env[i] = "NODE_OPTIONS=" + cluster.NodeOptions(v, path)
			return env
		}
	}
	return append(env, "NODE_OPTIONS="+cluster.NodeOptions("", path))
}

// logPath is where an instance's stdout ("out") or stderr ("err") goes.
func (s *Server) logPath(spec *AppSpec, sl *slot, stream string) string {
	custom := spec.OutFile
	if stream == "err" {
		custom = spec.ErrorFile
	}
	if custom != "" {
		if !filepath.IsAbs(custom) && spec.Cwd != "" {
			custom = filepath.Join(spec.Cwd, custom)
		}
		if s.instanceCount(spec) > 1 {
			// One writer per file: instances get their own, PM2-style.
			ext := filepath.Ext(custom)
			custom = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(custom, ext), sl.index, ext)
		}
		return custom
	}
	if s.cfg.Home == "" {
		return ""
	}
	return filepath.Join(s.cfg.Home, "logs", fmt.Sprintf("%s-%d.%s.log", spec.Name, sl.index, stream))
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
