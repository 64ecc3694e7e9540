package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/client"
	"github.com/kinproc/kin/supervisor/config"
)

func init() {
	register(&command{name: "start", summary: "start a script, binary or config file's apps under the daemon", run: runStart})
}

const startAbout = `Start an app under the kin daemon (started on first use), or every app of a
config file (kin.yaml, kin.json, a PM2 ecosystem.config.js/.json/.yaml).
.js/.mjs/.cjs scripts run with node, .py with python3, anything else directly.
The app gets the environment of this command (kept when the app is started
again, unless --update-env) plus --env K=V; with a config file, --env PROFILE
applies its env_PROFILE. Waits until every instance is
online and prints them; exit 1 if any failed.
kin start NAME, where NAME is an app the daemon knows (or its id, or all)
and no file here, starts its stopped instances as they are.

Examples:
  kin start app.js -i max --port 3000
  kin start server.py --name api --env MODE=prod -- --verbose
  kin start ecosystem.config.js --env production`

func runStart(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "start", "<script|binary|config-file|app> [flags] [-- ARGS…]", startAbout)
	name := fs.String("name", "", "app name (default: the script's name)")
	instances := fs.StringP("instances", "i", "", "instances: a number, or max for one per CPU")
	port := fs.Int("port", 0, "cluster mode: kin binds this TCP port and hands it to every instance")
	host := fs.String("host", "", "address to bind --port on (default: all)")
	envs := fs.StringArray("env", nil, "K=V to set in the app's environment (repeatable); with a config file, a profile name")
	cwd := fs.String("cwd", "", "working directory (default: the current one)")
	maxMemory := fs.String("max-memory", "", "restart an instance whose process tree uses more than SIZE (512M, 1G)")
	memoryLimit := fs.String("memory-limit", "", "kill an instance above SIZE (hard limit; a cgroup where available)")
	restart := fs.String("restart", "", "restart policy: always (default), on-failure, never")
	killTimeout := fs.String("kill-timeout", "", "how long a stop waits before SIGKILL (default 5s)")
	stopSignal := fs.String("stop-signal", "", "signal that asks the app to stop (default SIGTERM)")
	waitReady := fs.Bool("wait-ready", false, "an instance is online once it sends 'ready' over IPC (process.send('ready'))")
	readyTimeout := fs.String("ready-timeout", "", "how long to wait for an instance to be ready (default 30s)")
	watch := fs.Bool("watch", false, "restart when a file under the working directory changes")
	cron := fs.String("cron", "", "restart on a cron schedule (\"0 3 * * *\", \"@every 1h\")")
	interpreter := fs.String("interpreter", "", "interpreter for the script (none: run it directly)")
	only := fs.StringSlice("only", nil, "with a config file: start only these apps")
	updateEnv := fs.Bool("update-env", false, "a running app takes this command's environment (by default it keeps the one it was started with)")
	noWait := fs.Bool("no-wait", false, "return once started, without waiting for the instances to be online")
	asJSON := fs.Bool("json", false, "print the instances as a JSON array")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	var appArgs []string
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		pos, appArgs = fs.Args()[:dash], fs.Args()[dash:]
	}
	if len(pos) == 0 {
		return usageErrorf("start: name a script, a binary or a config file (kin help start)")
	}
	if len(pos) > 1 {
		appArgs = append(pos[1:], appArgs...)
	}
	target := pos[0]

	specs, err := knownApps(ctx, e, fs, target, *cwd, appArgs)
	if err != nil {
		return err
	}
	baseEnv := callerEnv()
	var natsSettings *supervisor.NATSSettings // the config file's nats mapping
	switch {
	case specs != nil:
		// Start the apps as they are.
	case isConfigFile(target):
		var profile string
		for _, v := range *envs {
			if strings.Contains(v, "=") {
				return usageErrorf("start: --env %s: with a config file, --env names a profile (env_<profile>); set variables in the file", v)
			}
			profile = v
		}
		for _, f := range []string{"name", "instances", "port", "host", "cwd", "max-memory", "memory-limit", "restart", "kill-timeout", "stop-signal", "wait-ready", "ready-timeout", "watch", "cron", "interpreter"} {
			if fs.Changed(f) {
				return usageErrorf("start: --%s applies to a script; set it in %s", f, target)
			}
		}
		if len(appArgs) > 0 {
			return usageErrorf("start: arguments after %s apply to a script; set args in the file", target)
		}
		file, err := config.Load(target, config.Options{Profile: profile})
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		for _, w := range file.Warnings {
			fmt.Fprintln(e.stderr, "kin: warning:", w)
		}
		keep := map[string]bool{}
		for _, n := range *only {
			keep[n] = true
		}
		for _, spec := range file.Apps {
			if len(keep) > 0 && !keep[spec.Name] {
				continue
			}
			spec.CallerEnv = baseEnv
			specs = append(specs, spec)
		}
		if len(specs) == 0 && len(file.Apps) > 0 {
			return usageErrorf("start: no app of %s matches --only %s", target, strings.Join(*only, ","))
		}
		natsSettings = file.NATS
	default:
		spec, err := scriptSpec(target, appArgs, startFlags{
			name: *name, instances: *instances, port: *port, host: *host, envs: *envs, cwd: *cwd,
			maxMemory: *maxMemory, memoryLimit: *memoryLimit, restart: *restart, killTimeout: *killTimeout,
			stopSignal: *stopSignal, waitReady: *waitReady, readyTimeout: *readyTimeout, watch: *watch,
			cron: *cron, interpreter: *interpreter,
		}, baseEnv)
		if err != nil {
			return err
		}
		specs = append(specs, spec)
	}

	c, err := daemonClient(ctx, e, true)
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := c.StartRequest(ctx, supervisor.StartRequest{Apps: specs, Wait: !*noWait, UpdateEnv: *updateEnv, NATS: natsSettings})
	if err != nil {
		// Print what did start, then the error.
		if len(list) > 0 {
			printInstances(e.stdout, list, *asJSON)
		}
		return apiError(err)
	}
	if len(specs) == 0 && natsSettings != nil && !*asJSON {
		fmt.Fprintln(e.stdout, "nats settings applied; no apps in", target)
		return nil
	}
	if err := printInstances(e.stdout, list, *asJSON); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	return failedInstances(list, names)
}

type startFlags struct {
	name, instances, host, cwd, maxMemory, memoryLimit, restart, killTimeout string
	stopSignal, readyTimeout, cron, interpreter                              string
	port                                                                     int
	envs                                                                     []string
	waitReady, watch                                                         bool
}

// scriptSpec builds the AppSpec of `kin start SCRIPT …`.
func scriptSpec(script string, args []string, f startFlags, env map[string]string) (supervisor.AppSpec, error) {
	var spec supervisor.AppSpec
	dir := f.cwd
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return spec, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return spec, err
	}
	spec.Cwd = dir
	// A script that exists relative to here is made absolute, so that the
	// app finds it whatever its cwd; a bare name is looked up on PATH.
	if strings.Contains(script, "/") || fileExists(filepath.Join(dir, script)) {
		if !filepath.IsAbs(script) {
			script = filepath.Join(dir, script)
		}
		if !fileExists(script) {
			return spec, usageErrorf("start: %s does not exist", script)
		}
	}
	spec.Command, spec.Interpreter = config.Resolve(script, f.interpreter, nil, args)
	spec.Script = script
	spec.Name = f.name
	if spec.Name == "" {
		base := filepath.Base(script)
		spec.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	switch f.instances {
	case "":
	case "max", "-1", "0":
		spec.Instances = -1
	default:
		n, err := strconv.Atoi(f.instances)
		if err != nil || n < 1 {
			return spec, usageErrorf("start: -i %s: want a number of instances or max", f.instances)
		}
		spec.Instances = n
	}
	spec.Port, spec.Host = f.port, f.host
	spec.CallerEnv = env
	for _, kv := range f.envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return spec, usageErrorf("start: --env %s: want KEY=VALUE", kv)
		}
		if spec.Env == nil {
			spec.Env = map[string]string{}
		}
		spec.Env[k] = v
	}
	if f.maxMemory != "" {
		n, err := supervisor.ParseSize(f.maxMemory)
		if err != nil {
			return spec, usageErrorf("start: --max-memory: %v", err)
		}
		spec.MaxMemory = n
	}
	if f.memoryLimit != "" {
		n, err := supervisor.ParseSize(f.memoryLimit)
		if err != nil {
			return spec, usageErrorf("start: --memory-limit: %v", err)
		}
		spec.MemoryLimit = n
	}
	spec.Restart = supervisor.RestartPolicy(f.restart)
	for _, d := range []struct {
		flag, val string
		dst       *supervisor.Duration
	}{{"kill-timeout", f.killTimeout, &spec.KillTimeout}, {"ready-timeout", f.readyTimeout, &spec.Ready.Timeout}} {
		if d.val == "" {
			continue
		}
		v, err := supervisor.ParseDuration(d.val)
		if err != nil {
			return spec, usageErrorf("start: --%s: %v", d.flag, err)
		}
		*d.dst = v
	}
	spec.StopSignal = f.stopSignal
	spec.WaitReady = f.waitReady
	if f.watch {
		spec.Watch = []string{"."}
	}
	spec.Cron = f.cron
	spec.Source = "cli"
	if err := spec.Validate(); err != nil {
		return spec, &exitError{code: exitUsage, err: errors.New(strings.TrimPrefix(err.Error(), "supervisor: "))}
	}
	return spec, nil
}

// knownApps returns the specs of the apps target names when it is the name
// or id of an app the daemon runs (or "all") rather than a file here:
// kin start NAME starts a stopped app as it is, as pm2 start NAME does,
// where taking NAME for a program on PATH would replace the app's command.
// It returns nil when target is no such app, or no daemon runs.
func knownApps(ctx context.Context, e *env, fs *pflag.FlagSet, target, cwd string, appArgs []string) ([]supervisor.AppSpec, error) {
	if strings.Contains(target, "/") || isConfigFile(target) {
		return nil, nil
	}
	dir := cwd
	if dir == "" {
		dir = "."
	}
	if fileExists(filepath.Join(dir, target)) {
		return nil, nil
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	apps, err := c.Describe(ctx, target)
	if err != nil {
		var ae *client.APIError
		if isNoDaemon(err) || errors.As(err, &ae) && ae.NotFound {
			return nil, nil
		}
		return nil, apiError(err)
	}
	changed := len(appArgs) > 0
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "no-wait" && f.Name != "json" {
			changed = true
		}
	})
	if changed {
		return nil, usageErrorf("start: %s is an app already: kin start %s starts it as it is; to change it, kin delete it first or start it from a config file", target, target)
	}
	specs := make([]supervisor.AppSpec, 0, len(apps))
	for _, a := range apps {
		specs = append(specs, a.Spec)
	}
	return specs, nil
}

// isConfigFile tells a config file from a script: YAML and JSON files, and
// JavaScript files named like PM2's ecosystem files.
func isConfigFile(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	switch filepath.Ext(base) {
	case ".yaml", ".yml", ".json":
		return true
	case ".js", ".cjs", ".mjs":
		return strings.Contains(base, "ecosystem") || strings.Contains(base, ".config.")
	}
	return false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// callerEnv is this command's environment, as PM2 passes it to the apps it
// starts, minus the variables that describe this process's own channels.
func callerEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "KIN_CHANNEL_"), strings.HasPrefix(k, "NODE_CHANNEL_"), k == "NODE_UNIQUE_ID",
			strings.HasPrefix(k, "LISTEN_"), k == "NOTIFY_SOCKET", k == "KIN_HOME":
			continue
		}
		env[k] = v
	}
	return env
}
