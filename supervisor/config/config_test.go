package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/supervisor"
)

func TestMain(m *testing.M) { kintest.Main(m) }

// nodeTimeout bounds node in tests: generous, since a test machine may be
// busy with other work, and node takes 100 ms to start on an idle one.
const nodeTimeout = time.Minute

func ms(n int) supervisor.Duration { return supervisor.Duration(time.Duration(n) * time.Millisecond) }

func testdata(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustLoad(t *testing.T, path string, opts Options) *File {
	t.Helper()
	f, err := Load(path, opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return f
}

func diffApps(t *testing.T, got, want []supervisor.AppSpec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d apps, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.MarshalIndent(got[i], "", "  ")
			w, _ := json.MarshalIndent(want[i], "", "  ")
			t.Errorf("app %d:\ngot  %s\nwant %s", i, g, w)
		}
	}
}

func TestLoadKinYAML(t *testing.T) {
	t.Parallel()
	dir := testdata(t)
	f := mustLoad(t, "testdata/kin.yaml", Options{})
	src := filepath.Join(dir, "kin.yaml")
	if f.Path != src {
		t.Errorf("Path = %q, want %q", f.Path, src)
	}
	diffApps(t, f.Apps, []supervisor.AppSpec{{
		Name:          "api",
		Command:       []string{"node", filepath.Join(dir, "server.js"), "--port", "3000"},
		Script:        "server.js",
		Interpreter:   "node",
		Cwd:           dir,
		Env:           map[string]string{"NODE_ENV": "production", "WORKERS": "4", "PORT": "3000"},
		Instances:     2,
		Port:          3000,
		RestartDelay:  ms(250),
		Backoff:       ms(200),
		MinUptime:     ms(2000),
		MaxRestarts:   20,
		RestartWindow: ms(120000),
		StopSignal:    "SIGTERM",
		KillTimeout:   ms(10000),
		WaitReady:     true,
		Ready:         supervisor.Readiness{Kind: supervisor.ReadyHTTP, URL: "http://127.0.0.1:3000/healthz", Timeout: ms(20000)},
		MaxMemory:     512 << 20,
		MemoryLimit:   1 << 30,
		DependsOn:     []string{"db", "cache"},
		Source:        src,
	}, {
		Name:      "db",
		Command:   []string{"postgres", "-D", "./data"},
		Cwd:       filepath.Join(dir, "db"),
		Restart:   supervisor.RestartOnFailure,
		Ready:     supervisor.Readiness{Kind: supervisor.ReadyTCP, Address: "127.0.0.1:5432"},
		OutFile:   filepath.Join(dir, "db", "logs", "db.out.log"),
		ErrorFile: "/var/log/db.err.log",
		Source:    src,
	}, {
		Name:        "cache",
		Command:     []string{"redis-server", "--port", "6380"},
		Cwd:         dir,
		Host:        "127.0.0.1",
		InstanceVar: "CACHE_INSTANCE",
		Ready:       supervisor.Readiness{Kind: supervisor.ReadyAlive, Delay: ms(500)},
		Cron:        "@every 1h",
		Watch:       []string{"conf"},
		WatchIgnore: []string{"*.tmp"},
		Source:      src,
	}})
	if len(f.Warnings) != 0 || f.NATS != nil {
		t.Errorf("Warnings = %q, NATS = %+v; want none", f.Warnings, f.NATS)
	}
}

func TestLoadKinJSON(t *testing.T) {
	t.Parallel()
	dir := testdata(t)
	f := mustLoad(t, "testdata/kin.json", Options{})
	src := filepath.Join(dir, "kin.json")
	diffApps(t, f.Apps, []supervisor.AppSpec{{
		Name:         "web",
		Command:      []string{"python3", "-u", filepath.Join(dir, "app.py"), "--bind", "127.0.0.1:8000", "--title", "my site"},
		Script:       "app.py",
		Interpreter:  "python3",
		Cwd:          dir,
		Instances:    -1,
		Restart:      supervisor.RestartAlways,
		RestartDelay: ms(1000),
		MaxMemory:    256 << 20,
		Watch:        []string{"."},
		DependsOn:    []string{"jobs"},
		Source:       src,
	}, {
		Name:    "jobs",
		Command: []string{"/srv/jobs/bin/jobs"},
		Script:  "bin/jobs",
		Cwd:     "/srv/jobs",
		Restart: supervisor.RestartNever,
		Env:     map[string]string{"QUEUE": "default", "DEBUG": "false"},
		Source:  src,
	}})
	if f.NATS == nil || !reflect.DeepEqual(*f.NATS, supervisor.NATSSettings{URLs: []string{"nats://127.0.0.1:4222"}, Sync: "always"}) {
		t.Errorf("NATS = %+v", f.NATS)
	}
}

// ecosystemApps is what testdata/ecosystem.config.* hold, loaded with the
// given profile ("" or "production").
func ecosystemApps(dir, profile string) []supervisor.AppSpec {
	apiEnv := map[string]string{"NODE_ENV": "development", "PORT": "3000"}
	workerEnv := map[string]string{"QUEUE": "default"}
	port := 3000
	if profile == "production" {
		apiEnv = map[string]string{"NODE_ENV": "production", "PORT": "8080"}
		workerEnv = map[string]string{"QUEUE": "prod"}
		port = 8080
	}
	return []supervisor.AppSpec{{
		Name:        "api",
		Command:     []string{"node", "--max-old-space-size=256", filepath.Join(dir, "server.js")},
		Script:      "./server.js",
		Interpreter: "node",
		Cwd:         dir,
		Env:         apiEnv,
		Instances:   -1,
		Port:        port, // cluster mode: from env.PORT
		StopSignal:  "SIGINT",
		KillTimeout: ms(3000),
		WaitReady:   true,
		Ready:       supervisor.Readiness{Timeout: ms(8000)},
		MaxMemory:   300 << 20,
	}, {
		Name:         "worker",
		Command:      []string{"node", filepath.Join(dir, "worker.js"), "--queue", "default", "--verbose"},
		Script:       "worker.js",
		Interpreter:  "node",
		Cwd:          dir,
		Env:          workerEnv,
		Restart:      supervisor.RestartNever,
		RestartDelay: ms(500),
		Backoff:      ms(100),
		MinUptime:    ms(5000),
		MaxRestarts:  10,
		StopSignal:   "SIGINT",
		Cron:         "0 3 * * *",
		Watch:        []string{"src"},
		WatchIgnore:  []string{"node_modules", "*.log"},
		OutFile:      filepath.Join(dir, "logs", "worker.out.log"),
		ErrorFile:    filepath.Join(dir, "logs", "worker.err.log"),
	}}
}

// TestLoadEcosystem loads one PM2 ecosystem file in its three forms, with
// and without a profile: all give the same apps.
func TestLoadEcosystem(t *testing.T) {
	t.Parallel()
	dir := testdata(t)
	for _, file := range []string{"ecosystem.config.js", "ecosystem.config.json", "ecosystem.config.yaml"} {
		for _, profile := range []string{"", "production"} {
			t.Run(file+"/"+profile, func(t *testing.T) {
				t.Parallel()
				opts := Options{Profile: profile}
				if strings.HasSuffix(file, ".js") {
					opts.Node, opts.Timeout = kintest.Node(t), nodeTimeout
				}
				f := mustLoad(t, filepath.Join("testdata", file), opts)
				want := ecosystemApps(dir, profile)
				for i := range want {
					want[i].Source = filepath.Join(dir, file)
				}
				diffApps(t, f.Apps, want)
				if len(f.Warnings) != 1 || !strings.HasSuffix(f.Warnings[0], ": apps[1].merge_logs: ignored: kin keeps one log per instance") {
					t.Errorf("Warnings = %q, want one about merge_logs", f.Warnings)
				}
			})
		}
	}
}

// TestWarningLines checks that warnings carry the line of their key in each
// form of the ecosystem file, JavaScript included (found in the source).
func TestWarningLines(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]string{
		"ecosystem.config.js":   "testdata/ecosystem.config.js:39:7: apps[1].merge_logs: ignored: kin keeps one log per instance",
		"ecosystem.config.json": "testdata/ecosystem.config.json:30:7: apps[1].merge_logs: ignored: kin keeps one log per instance",
		"ecosystem.config.yaml": "testdata/ecosystem.config.yaml:30:5: apps[1].merge_logs: ignored: kin keeps one log per instance",
	} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			opts := Options{}
			if strings.HasSuffix(file, ".js") {
				opts.Node, opts.Timeout = kintest.Node(t), nodeTimeout
			}
			f := mustLoad(t, "testdata/"+file, opts)
			if len(f.Warnings) != 1 || f.Warnings[0] != want {
				t.Errorf("Warnings = %q\nwant      [%q]", f.Warnings, want)
			}
		})
	}
}

// TestLoadESM evaluates an ES module that imports a file next to it.
func TestLoadESM(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	dir := filepath.Join(testdata(t), "esm")
	f := mustLoad(t, "testdata/esm/ecosystem.config.mjs", Options{Node: node, Timeout: nodeTimeout})
	diffApps(t, f.Apps, []supervisor.AppSpec{{
		Name:        "esm",
		Command:     []string{"node", filepath.Join(dir, "index.mjs")},
		Script:      "index.mjs",
		Interpreter: "node",
		Cwd:         dir,
		Env:         map[string]string{"NODE_ENV": "production"},
		StopSignal:  "SIGINT",
		Source:      filepath.Join(dir, "ecosystem.config.mjs"),
	}})
}

// TestRoundTrip: an AppSpec as JSON (as the daemon's state holds it) is a
// valid app in a config file, and loads back unchanged.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "kin.json")
	specs := []supervisor.AppSpec{{
		Name: "a", Command: []string{"node", "/srv/a.js", "-x"}, Script: "a.js", Interpreter: "node",
		Cwd: "/srv", Env: map[string]string{"A": "1"}, Instances: -1, InstanceVar: "N", Port: 8080, Host: "::1",
		Restart: supervisor.RestartOnFailure, RestartDelay: ms(1500), Backoff: ms(300), MinUptime: ms(3000),
		MaxRestarts: -1, RestartWindow: ms(90000), StopSignal: "SIGUSR2", KillTimeout: ms(7000), WaitReady: true,
		Ready:     supervisor.Readiness{Kind: supervisor.ReadyIPC, Delay: ms(10), Timeout: ms(60000)},
		MaxMemory: 1 << 29, MemoryLimit: 1 << 30, Cron: "*/5 * * * *", Watch: []string{"src", "lib"},
		WatchIgnore: []string{"*.tmp"}, OutFile: "/var/log/a.out", ErrorFile: "/var/log/a.err", DependsOn: []string{"b"},
		Source: "cli",
	}, {
		Name: "b", Command: []string{"/usr/bin/b"}, Cwd: dir, Env: map[string]string{"PORT": "9000"},
	}}
	data, err := json.Marshal(map[string]any{"apps": specs})
	if err != nil {
		t.Fatal(err)
	}
	f, err := LoadBytes(name, data, Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	specs[0].Env["PORT"] = "8080"
	for i := range specs {
		specs[i].Source = name
	}
	diffApps(t, f.Apps, specs)
}

func TestProfileMissing(t *testing.T) {
	t.Parallel()
	f, err := LoadBytes("kin.yaml", []byte("apps:\n  - {name: a, command: [a], env_production: {A: 1}}\n"), Options{Profile: "staging", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kin.yaml: no app has env_staging: the profile changes nothing"}
	if !reflect.DeepEqual(f.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", f.Warnings, want)
	}
	if f.Apps[0].Env != nil {
		t.Errorf("Env = %v, want nil", f.Apps[0].Env)
	}
}

func TestAppendEnvToName(t *testing.T) {
	t.Parallel()
	f, err := LoadBytes("kin.yaml", []byte("apps:\n  - {script: api.js, append_env_to_name: true}\n"), Options{Profile: "staging", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Apps[0].Name; got != "api-staging" {
		t.Errorf("Name = %q, want api-staging", got)
	}
}

// TestScripts covers how a script becomes a command.
func TestScripts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	tests := []struct {
		app        string
		name       string
		command    []string
		interp     string
		warnSuffix string
	}{
		{`{script: app.js}`, "app", []string{"node", dir + "/app.js"}, "node", ""},
		{`{script: app.mjs, interpreter: bun}`, "app", []string{"bun", dir + "/app.mjs"}, "bun", ""},
		{`{script: app.js, interpreter: none}`, "app", []string{"app.js"}, "", ""}, // no such file: on PATH
		{`{script: tool, interpreter: none}`, "tool", []string{dir + "/tool"}, "", ""},
		{`{script: app.ts}`, "app", []string{"node", dir + "/app.ts"}, "node", ""},
		{`{script: main.py, args: "-v"}`, "main", []string{"python3", dir + "/main.py", "-v"}, "python3", ""},
		{`{script: run.sh}`, "run", []string{"bash", dir + "/run.sh"}, "bash", ""},
		{`{script: tool}`, "tool", []string{dir + "/tool"}, "", ""},
		{`{script: redis-server}`, "redis-server", []string{"redis-server"}, "", ""},
		{`{script: bin/server, args: [-p, 80]}`, "server", []string{dir + "/bin/server", "-p", "80"}, "", ""},
		{`{script: /usr/bin/env, args: x}`, "env", []string{"/usr/bin/env", "x"}, "", ""},
		{`{script: ~/bin/x}`, "x", []string{home + "/bin/x"}, "", ""},
		{`{script: app.js, interpreter: ./venv/bin/node}`, "app", []string{dir + "/venv/bin/node", dir + "/app.js"}, dir + "/venv/bin/node", ""},
		{`{script: "npm run start", args: --watch}`, "npm", []string{"npm", "run", "start", "--watch"}, "", ""},
		{`{script: "node server.js"}`, "node", []string{"node", "server.js"}, "node", ""},
		{`{name: s, script: "node a.js | tee log"}`, "s", []string{"sh", "-c", "node a.js | tee log"}, "", "runs with sh -c"},
		{`{command: "php -S 0.0.0.0:80"}`, "php", []string{"php", "-S", "0.0.0.0:80"}, "php", ""},
		{`{command: [node, a.js]}`, "node", []string{"node", "a.js"}, "node", ""},
		{`{command: [/usr/bin/python3, -m, http.server], name: http}`, "http", []string{"/usr/bin/python3", "-m", "http.server"}, "/usr/bin/python3", ""},
		{`{command: [./serve], script: serve.js}`, "serve", []string{"./serve"}, "", ""},
		{`{script: app, node_args: --inspect}`, "app", []string{"app"}, "", "ignored: the script runs without an interpreter"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			t.Parallel()
			f, err := LoadBytes("kin.yaml", []byte("apps:\n  - "+tt.app+"\n"), Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			a := f.Apps[0]
			if a.Name != tt.name || !reflect.DeepEqual(a.Command, tt.command) || a.Interpreter != tt.interp {
				t.Errorf("got name %q, command %q, interpreter %q\nwant name %q, command %q, interpreter %q",
					a.Name, a.Command, a.Interpreter, tt.name, tt.command, tt.interp)
			}
			if tt.warnSuffix == "" && len(f.Warnings) > 0 || tt.warnSuffix != "" && (len(f.Warnings) != 1 || !strings.HasSuffix(f.Warnings[0], tt.warnSuffix)) {
				t.Errorf("Warnings = %q, want one ending %q", f.Warnings, tt.warnSuffix)
			}
		})
	}
}

// TestValues covers how single settings are read.
func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		setting string
		check   func(s supervisor.AppSpec) bool
		warning string
	}{
		{`instances: 0`, func(s supervisor.AppSpec) bool { return s.Instances == -1 }, ""},
		{`instances: -1`, func(s supervisor.AppSpec) bool { return s.Instances == -1 }, ""},
		{`instances: "3"`, func(s supervisor.AppSpec) bool { return s.Instances == 3 }, ""},
		{`instances: MAX`, func(s supervisor.AppSpec) bool { return s.Instances == -1 }, ""},
		{`instances: 4.0`, func(s supervisor.AppSpec) bool { return s.Instances == 4 }, ""},
		{`kill_timeout: 1600`, func(s supervisor.AppSpec) bool { return s.KillTimeout == ms(1600) }, ""},
		{`kill_timeout: "1600"`, func(s supervisor.AppSpec) bool { return s.KillTimeout == ms(1600) }, ""},
		{`min_uptime: 1m`, func(s supervisor.AppSpec) bool { return s.MinUptime == ms(60000) }, ""},
		{`min_uptime: 0.5`, func(s supervisor.AppSpec) bool { return s.MinUptime == supervisor.Duration(500*time.Microsecond) }, ""},
		{`max_memory_restart: 200M`, func(s supervisor.AppSpec) bool { return s.MaxMemory == 200<<20 }, ""},
		{`max_memory: 1.5G`, func(s supervisor.AppSpec) bool { return s.MaxMemory == 3<<29 }, ""},
		{`memory_limit: 1048576`, func(s supervisor.AppSpec) bool { return s.MemoryLimit == 1<<20 }, ""},
		{`stop_signal: int`, func(s supervisor.AppSpec) bool { return s.StopSignal == "SIGINT" }, ""},
		{`stop_signal: 1`, func(s supervisor.AppSpec) bool { return s.StopSignal == "SIGHUP" }, ""},
		{`autorestart: true`, func(s supervisor.AppSpec) bool { return s.Restart == "" }, ""},
		{`autorestart: false`, func(s supervisor.AppSpec) bool { return s.Restart == supervisor.RestartNever }, ""},
		{`watch: false`, func(s supervisor.AppSpec) bool { return s.Watch == nil }, ""},
		{`watch: src`, func(s supervisor.AppSpec) bool { return reflect.DeepEqual(s.Watch, []string{"src"}) }, ""},
		{`ignore_watch: "*.log"`, func(s supervisor.AppSpec) bool { return reflect.DeepEqual(s.WatchIgnore, []string{"*.log"}) }, ""},
		{`cron_restart: 0`, func(s supervisor.AppSpec) bool { return s.Cron == "" }, ""},
		{`ready: ipc`, func(s supervisor.AppSpec) bool { return s.Ready.Kind == supervisor.ReadyIPC }, ""},
		{`listen_timeout: 3000`, func(s supervisor.AppSpec) bool { return s.Ready.Timeout == ms(3000) }, ""},
		{`env: {A: null, B: [1, 2], C: 1.50, D: 0x1F, E: True, F: 007}`, func(s supervisor.AppSpec) bool {
			return reflect.DeepEqual(s.Env, map[string]string{"A": "", "B": "[1,2]", "C": "1.50", "D": "0x1F", "E": "True", "F": "007"})
		}, ""},
		{`args: [-n, 1.0, true]`, func(s supervisor.AppSpec) bool {
			return reflect.DeepEqual(s.Command[2:], []string{"-n", "1.0", "true"})
		}, ""},
		{`port: 0x50`, func(s supervisor.AppSpec) bool { return s.Port == 80 }, ""},
		{`env: {A: x}` + "\n    env_prod: {A: y}", func(s supervisor.AppSpec) bool { return s.Env["A"] == "x" }, ""},
		{`port: 80` + "\n    env: {PORT: 81}", func(s supervisor.AppSpec) bool { return s.Port == 80 && s.Env["PORT"] == "80" }, "apps[0].port: replaces env PORT=81, as PM2 does"},
		{`exec_mode: cluster_mode` + "\n    instances: 4", func(s supervisor.AppSpec) bool { return s.Port == 0 && s.Instances == 4 },
			"apps[0].exec_mode: kin shares one listening socket between instances only when port is set; without it each instance listens by itself"},
		{`exec_mode: fork` + "\n    port: 3000", func(s supervisor.AppSpec) bool { return s.Port == 3000 },
			"apps[0].port: kin binds port 3000 itself and hands the socket to the app (PM2 in fork mode only sets PORT)"},
		{`max_restarts: 0`, func(s supervisor.AppSpec) bool { return s.MaxRestarts == 0 },
			"apps[0].max_restarts: 0 means the default budget (15 restarts a minute); restart: never stops restarts"},
		{`maxMemoryRestart: 1K`, func(s supervisor.AppSpec) bool { return s.MaxMemory == 1024 }, ""},
		{`interpreterArgs: [--inspect]`, func(s supervisor.AppSpec) bool { return s.Command[1] == "--inspect" }, ""},
		{`cwd: null`, func(s supervisor.AppSpec) bool { return s.Cwd == "/srv" }, ""},
		{`x-note: anything`, func(s supervisor.AppSpec) bool { return true }, ""},
		{`vizion: false`, func(s supervisor.AppSpec) bool { return true }, ""},
		{`merge_logs: false`, func(s supervisor.AppSpec) bool { return true }, ""},
		{`treekill: false`, func(s supervisor.AppSpec) bool { return true }, "apps[0].treekill: ignored: kin always stops the whole process group"},
		{`pid_file: /tmp/a.pid`, func(s supervisor.AppSpec) bool { return true }, "apps[0].pid_file: ignored: kin keeps pids in its state, not in files"},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			t.Parallel()
			data := "apps:\n  - name: a\n    script: a.js\n    " + tt.setting + "\n"
			f, err := LoadBytes("kin.yaml", []byte(data), Options{Dir: "/srv"})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f.Apps[0]) {
				b, _ := json.Marshal(f.Apps[0])
				t.Errorf("unexpected spec %s", b)
			}
			if tt.warning == "" && len(f.Warnings) > 0 || tt.warning != "" && (len(f.Warnings) != 1 || !strings.HasSuffix(f.Warnings[0], tt.warning)) {
				t.Errorf("Warnings = %q, want %q", f.Warnings, tt.warning)
			}
		})
	}
}

// TestErrors checks the exact message for each kind of mistake.
func TestErrors(t *testing.T) {
	t.Parallel()
	const app = "apps:\n  - name: web\n    script: web.js\n"
	tests := []struct {
		name, file, data, want string
	}{
		{"unknown key", "kin.yaml", app + "    restart_dealy: 5s\n",
			`kin.yaml:4:5: apps[0].restart_dealy: unknown key (did you mean restart_delay?)`},
		{"unknown key without suggestion", "kin.yaml", app + "    colour: blue\n",
			`kin.yaml:4:5: apps[0].colour: unknown key`},
		{"unknown top-level key", "kin.yaml", "app:\n  - {name: a, command: [a]}\n",
			`kin.yaml:1:1: app: unknown key (did you mean apps?)`},
		{"app key at top level", "kin.yaml", "script: a.js\n",
			`kin.yaml:1:1: script: unknown key (apps go in an apps list)`},
		{"wrong type", "kin.yaml", app + "    instances: lots\n",
			`kin.yaml:4:5: apps[0].instances: want a number or "max", got "lots"`},
		{"wrong type bool", "kin.yaml", app + "    wait_ready: yes\n",
			`kin.yaml:4:5: apps[0].wait_ready: want true or false, got "yes"`},
		{"wrong type string", "kin.yaml", app + "    cwd: [a]\n",
			`kin.yaml:4:5: apps[0].cwd: want a string, got a list`},
		{"wrong list element", "kin.yaml", app + "    watch: [src, {a: 1}]\n",
			`kin.yaml:4:18: apps[0].watch[1]: want a string, got a mapping`},
		{"bad duration", "kin.yaml", app + "    kill_timeout: 5 secs\n",
			`kin.yaml:4:5: apps[0].kill_timeout: want a duration such as "5s" or a number of milliseconds, got "5 secs"`},
		{"negative duration", "kin.yaml", app + "    restart_delay: -5\n",
			`kin.yaml:4:5: apps[0].restart_delay: negative duration -5`},
		{"bad size", "kin.yaml", app + "    max_memory_restart: 12Q\n",
			`kin.yaml:4:5: apps[0].max_memory_restart: want a size such as "512M" or a number of bytes, got "12Q"`},
		{"bad signal", "kin.yaml", app + "    stop_signal: SIGFOO\n",
			`kin.yaml:4:5: apps[0].stop_signal: unknown signal "SIGFOO": want a name such as SIGTERM, SIGINT, SIGHUP, SIGUSR2, or a number`},
		{"bad restart", "kin.yaml", app + "    restart: sometimes\n",
			`kin.yaml:4:5: apps[0].restart: want always, on-failure or never, got "sometimes"`},
		{"negative instances", "kin.yaml", app + "    instances: -2\n",
			`kin.yaml:4:5: apps[0].instances: want a count, or "max" for one per CPU, got -2`},
		{"bad port", "kin.yaml", app + "    port: 70000\n",
			`kin.yaml:4:5: apps[0].port: want a port number (1-65535), got 70000`},
		{"bad exec_mode", "kin.yaml", app + "    exec_mode: threads\n",
			`kin.yaml:4:5: apps[0].exec_mode: want fork or cluster, got "threads"`},
		{"bad cron", "kin.yaml", app + "    cron_restart: every day\n",
			`kin.yaml:4:5: apps[0].cron_restart: cron expression "every day": expected exactly 5 fields, found 2: [every day]`},
		{"bad env", "kin.yaml", app + "    env: [A=1]\n",
			`kin.yaml:4:5: apps[0].env: want a mapping of variable names to values, got a list`},
		{"bad env name", "kin.yaml", app + "    env:\n      A=B: 1\n",
			`kin.yaml:5:7: apps[0].env.A=B: not a variable name: "A=B"`},
		{"bad profile env", "kin.yaml", app + "    env_production: production\n",
			`kin.yaml:4:5: apps[0].env_production: want a mapping of variable names to values, got "production"`},
		{"unterminated quote", "kin.yaml", app + "    args: --name 'a b\n",
			`kin.yaml:4:5: apps[0].args: unterminated ' quote in "--name 'a b"`},
		{"ready unknown key", "kin.yaml", app + "    ready: {kind: http, ulr: x}\n",
			`kin.yaml:4:25: apps[0].ready.ulr: unknown key (did you mean url?)`},
		{"ready http without url", "kin.yaml", app + "    ready: {kind: http}\n",
			`kin.yaml:4:5: apps[0].ready: kind http needs url`},
		{"ready bad kind", "kin.yaml", app + "    ready:\n      kind: socket\n",
			`kin.yaml:5:7: apps[0].ready.kind: want alive, ipc, notify, listening, http or tcp, got "socket"`},
		{"alias conflict", "kin.yaml", app + "    max_memory: 1M\n    max_memory_restart: 2M\n",
			`kin.yaml:5:5: apps[0].max_memory_restart: sets what max_memory on line 4 sets: keep one`},
		{"listen_timeout conflict", "kin.yaml", app + "    listen_timeout: 100\n    ready: {timeout: 1s}\n",
			`kin.yaml:5:13: apps[0].ready.timeout: sets what listen_timeout on line 4 sets: keep one`},
		{"command and args", "kin.yaml", "apps:\n  - name: a\n    command: [a]\n    args: [b]\n",
			`kin.yaml:4:5: apps[0].args: with command, put the arguments in command`},
		{"uid", "kin.yaml", app + "    uid: www-data\n",
			`kin.yaml:4:5: apps[0].uid: not supported: kin runs apps as the user it runs as (run a kin daemon as that user)`},
		{"bad name", "kin.yaml", "apps:\n  - name: my app\n    script: a.js\n",
			`kin.yaml:2:5: apps[0].name: name "my app": use letters, digits, '-', '_' and '.'`},
		{"reserved name", "kin.yaml", "apps:\n  - name: all\n    script: a.js\n",
			`kin.yaml:2:5: apps[0].name: name "all": use letters, digits, '-', '_' and '.'`},
		{"missing script", "kin.yaml", "apps:\n  - name: web\n    instances: 2\n",
			`kin.yaml:2:5: apps[0]: no script or command`},
		{"empty script", "kin.yaml", "apps:\n  - name: web\n    script: \"\"\n",
			`kin.yaml:3:5: apps[0].script: empty script`},
		{"app not a mapping", "kin.yaml", "apps:\n  - web.js\n",
			`kin.yaml:2:5: apps[0]: want a mapping, got "web.js"`},
		{"apps not a list", "kin.yaml", "apps: web.js\n",
			`kin.yaml:1:1: apps: want a list of apps, got "web.js"`},
		{"one app", "kin.yaml", "apps: {name: a, script: a.js, instances: x}\n",
			`kin.yaml:1:31: apps.instances: want a number or "max", got "x"`},
		{"duplicate name", "kin.yaml", app + "  - name: web\n    script: other.js\n",
			`kin.yaml:4:5: apps[1].name: duplicate app name "web" (also apps[0] on line 2)`},
		{"duplicate default name", "kin.yaml", "apps:\n  - script: web.js\n  - script: lib/web.py\n",
			`kin.yaml:3:5: apps[1].name: duplicate app name "web" (also apps[0] on line 2)`},
		{"unknown dependency", "kin.yaml", app + "    depends_on: [dbb]\n  - {name: db, script: db.js}\n",
			`kin.yaml:4:5: apps[0].depends_on[0]: unknown app "dbb" (did you mean db?)`},
		{"self dependency", "kin.yaml", app + "    depends_on: web\n",
			`kin.yaml:4:5: apps[0].depends_on[0]: web depends on itself`},
		{"dependency cycle", "kin.yaml", "apps:\n" +
			"  - {name: a, script: a.js, depends_on: [b]}\n" +
			"  - {name: b, script: b.js, depends_on: [c]}\n" +
			"  - {name: c, script: c.js, depends_on: [a]}\n",
			`kin.yaml:2:29: apps[0].depends_on: dependency cycle: a -> b -> c -> a`},
		{"several errors", "kin.yaml", app + "    instances: lots\n    port: -1\n  - {name: x}\n",
			"kin.yaml:4:5: apps[0].instances: want a number or \"max\", got \"lots\"\n" +
				"kin.yaml:5:5: apps[0].port: want a port number (1-65535), got -1\n" +
				"kin.yaml:6:5: apps[1]: no script or command"},
		{"yaml syntax", "kin.yaml", app + "   bad: 1\n",
			`kin.yaml:4: did not find expected '-' indicator`},
		{"yaml tab", "kin.yaml", app + "\tport: 1\n",
			`kin.yaml:4: found a tab character that violates indentation`},
		{"yaml unclosed", "kin.yaml", app + "    args: [a, b\n",
			`kin.yaml:4: did not find expected ',' or ']'`},
		{"yaml duplicate key", "kin.yaml", app + "    script: x.js\n",
			`kin.yaml:4:5: duplicate key "script"`},
		{"yaml two documents", "kin.yaml", app + "---\napps: []\n",
			`kin.yaml:4: a second YAML document: want one`},
		{"yaml empty", "kin.yaml", "# nothing\n",
			`kin.yaml: empty: want an apps list`},
		{"json syntax", "kin.json", "{\n  \"apps\": [\n    {\"name\": \"web\" \"script\": \"web.js\"}\n  ]\n}\n",
			`kin.json:3:20: invalid character '"' after object key:value pair`},
		{"json trailing comma", "kin.json", "{\"apps\": [\n  {\"name\": \"web\", \"script\": \"web.js\",}\n]}\n",
			`kin.json:2:38: invalid character '}' looking for beginning of object key string`},
		{"json truncated", "kin.json", "{\"apps\": [\n",
			`kin.json:2:1: unexpected end of file`},
		{"json trailing data", "kin.json", "{\"apps\": []}\n{}\n",
			`kin.json:2:1: more data after the top-level value`},
		{"json unknown key", "kin.json", "{\n  \"apps\": [\n    {\"name\": \"web\",\n     \"script\": \"web.js\",\n     \"restart_dealy\": 5}\n  ]\n}\n",
			`kin.json:5:6: apps[0].restart_dealy: unknown key (did you mean restart_delay?)`},
		{"json wrong type", "kin.json", "{\"apps\": [{\"name\": \"web\", \"script\": \"web.js\", \"instances\": true}]}",
			`kin.json:1:47: apps[0].instances: want a number or "max", got true`},
		{"json empty", "kin.json", "",
			`kin.json:1:1: empty file: want a JSON object with an apps list`},
		{"unknown format", "kin.toml", "",
			`kin.toml: unknown config file type: want .yaml, .yml, .json, .js, .cjs or .mjs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := LoadBytes(tt.file, []byte(tt.data), Options{Dir: "/srv"})
			if err == nil {
				t.Fatalf("no error; apps %+v", f.Apps)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty ErrorList", err)
			}
			for _, e := range list {
				if e.File != tt.file {
					t.Errorf("error %q names file %q", e, e.File)
				}
			}
		})
	}
}

// TestErrorsJS checks errors in JavaScript files: node's own for a file that
// does not run, and kin's with the line found in the source.
func TestErrorsJS(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	tests := []struct {
		name, file, data, want string
	}{
		{"syntax", "ecosystem.config.js", "module.exports = {\n  apps: [{\n    name: 'a'\n    script: 'a.js'\n  }]\n}\n",
			`ecosystem.config.js:4:5: SyntaxError: Unexpected identifier 'script'`},
		{"esm syntax", "ecosystem.config.mjs", "export default {\n  apps: [{ name: 'a' script: 'a.js' }]\n}\n",
			`ecosystem.config.mjs:2:22: SyntaxError: Unexpected identifier 'script'`},
		{"throws", "ecosystem.config.js", "const x = 1;\nthrow new Error('no config here');\n",
			`ecosystem.config.js:2:7: Error: no config here`},
		{"missing require", "ecosystem.config.js", "const env = require('./missing.json');\nmodule.exports = {apps: []};\n",
			`ecosystem.config.js:1:13: Error: Cannot find module './missing.json'`},
		{"not JSON", "ecosystem.config.js", "module.exports = {apps: [{name: 'a', script: 'a.js', big: 1n}]};\n",
			`ecosystem.config.js: cannot turn the exported value into JSON: Do not know how to serialize a BigInt`},
		{"exports nothing", "ecosystem.config.js", "const apps = [];\n",
			`ecosystem.config.js: no apps: want an apps list`},
		{"wrong type", "ecosystem.config.js", "module.exports = {\n  apps: [{\n    name: 'a',\n    script: 'a.js',\n    instances: 'lots',\n  }],\n};\n",
			`ecosystem.config.js:5:5: apps[0].instances: want a number or "max", got "lots"`},
		{"unknown key in second app", "ecosystem.config.js", "module.exports = {\n  apps: [\n    { name: 'a', script: 'a.js' },\n    {\n      script: 'b.js',\n      name: 'b',\n      restart_dealy: 100,\n    },\n  ],\n};\n",
			`ecosystem.config.js:7:7: apps[1].restart_dealy: unknown key (did you mean restart_delay?)`},
		{"key built at run time", "ecosystem.config.js", "const k = 'colour';\nmodule.exports = {apps: [{name: 'a', script: 'a.js', [k]: 1}]};\n",
			`ecosystem.config.js:2: apps[0].colour: unknown key`},
		{"duplicate name", "ecosystem.config.js", "module.exports = {apps: [\n  {name: 'a', script: 'a.js'},\n  {name: 'a', script: 'b.js'},\n]};\n",
			`ecosystem.config.js:2:4: apps[1].name: duplicate app name "a" (also apps[0] on line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadBytes(tt.file, []byte(tt.data), Options{Node: node, Dir: "/srv", Timeout: nodeTimeout})
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestJSTimeout(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	start := time.Now()
	_, err := LoadBytes("ecosystem.config.js", []byte("for (;;) {}\n"), Options{Node: node, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.HasPrefix(err.Error(), "ecosystem.config.js: node did not finish evaluating it within 300ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestNoNode(t *testing.T) {
	t.Parallel()
	_, err := LoadBytes("ecosystem.config.js", []byte("module.exports = {}\n"), Options{Node: "/nonexistent/node"})
	if err == nil || !strings.HasPrefix(err.Error(), "ecosystem.config.js: cannot run node to evaluate it: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/nope.yaml", Options{})
	if err == nil || err.Error() != "testdata/nope.yaml: no such file or directory" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestNATSOnly(t *testing.T) {
	t.Parallel()
	f, err := LoadBytes("kin.yaml", []byte("nats:\n  url: nats://a:4222\n  max_store: 1G\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Apps) != 0 || f.NATS == nil || !reflect.DeepEqual(*f.NATS, supervisor.NATSSettings{URLs: []string{"nats://a:4222"}, MaxStore: 1 << 30}) {
		t.Errorf("Apps %v, NATS %+v", f.Apps, f.NATS)
	}
	if _, err := LoadBytes("kin.yaml", []byte("nats: nats://a:4222\n"), Options{}); err == nil || err.Error() != `kin.yaml:1:1: nats: want a mapping, got "nats://a:4222"` {
		t.Errorf("err = %v", err)
	}
}

func TestPM2ProcessList(t *testing.T) {
	t.Parallel()
	// A PM2 process file may be a bare list of apps.
	f, err := LoadBytes("processes.json", []byte(`[{"name": "a", "script": "a.js"}, {"name": "b", "script": "b.js"}]`), Options{Dir: "/srv"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Apps) != 2 || f.Apps[1].Command[1] != "/srv/b.js" || f.Apps[1].StopSignal != "" {
		t.Errorf("Apps = %+v", f.Apps)
	}
}

// TestDeployIgnored: PM2 ecosystem files often have a deploy section.
func TestDeployIgnored(t *testing.T) {
	t.Parallel()
	f, err := LoadBytes("ecosystem.config.yaml", []byte("apps: [{script: a.js}]\ndeploy:\n  production: {user: me}\n"), Options{Dir: "/srv"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ecosystem.config.yaml:2:1: deploy: ignored: kin does not deploy"}; !reflect.DeepEqual(f.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", f.Warnings, want)
	}
	if f.Apps[0].StopSignal != "SIGINT" {
		t.Errorf("StopSignal = %q, want PM2's SIGINT", f.Apps[0].StopSignal)
	}
}

func TestYAMLAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("x-a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	prev := "a"
	for i := range 8 {
		name := string(rune('b' + i))
		b.WriteString("x-" + name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n")
		prev = name
	}
	_, err := LoadBytes("kin.yaml", []byte(b.String()), Options{})
	if err == nil || !strings.Contains(err.Error(), "too many values") {
		t.Fatalf("err = %v", err)
	}
}

// TestJSConsoleLog: what a config prints does not get in the way, nor do
// the timers it leaves behind.
func TestJSConsoleLog(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	src := "console.log('loading config'); process.stdout.write('{');\nsetInterval(() => {}, 1000);\nmodule.exports = {apps: [{script: 'a.js', env: {HOME_DIR: process.env.HOME}}]};\n"
	f, err := LoadBytes("ecosystem.config.cjs", []byte(src), Options{Node: node, Dir: "/srv", Timeout: nodeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Apps) != 1 || f.Apps[0].Name != "a" || f.Apps[0].Env["HOME_DIR"] != os.Getenv("HOME") {
		t.Errorf("Apps = %+v", f.Apps)
	}
}

// TestPM2TextScript: PM2 runs a text file with no known extension with node
// (Express's bin/www); kin does so in PM2 files, unless the file is
// executable and starts with #!.
func TestPM2TextScript(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"www":     {"var app = require('../app');\n", 0o644},
		"shebang": {"#!/usr/bin/env node\nrequire('../app');\n", 0o755},
		"plain":   {"#!/bin/sh\necho hi\n", 0o644},
		"binary":  {"\x7fELF\x02\x01\x01\x00\x00", 0o755},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		file, script string
		command      []string
	}{
		{"ecosystem.config.json", "www", []string{"node", dir + "/www"}},
		{"ecosystem.config.json", "shebang", []string{dir + "/shebang"}},
		{"ecosystem.config.json", "plain", []string{"node", dir + "/plain"}},
		{"ecosystem.config.json", "binary", []string{dir + "/binary"}},
		{"ecosystem.config.json", "missing", []string{"missing"}},
		{"kin.json", "www", []string{dir + "/www"}},
	}
	for _, tt := range tests {
		data := `{"apps": [{"script": "` + tt.script + `"}]}`
		f, err := LoadBytes(tt.file, []byte(data), Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Apps[0].Command; !reflect.DeepEqual(got, tt.command) {
			t.Errorf("%s: script %s: command %q, want %q", tt.file, tt.script, got, tt.command)
		}
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	if p, err := Find("testdata"); err != nil || p != filepath.Join("testdata", "kin.yaml") {
		t.Errorf("Find(testdata) = %q, %v", p, err)
	}
	if p, err := Find("testdata/esm"); err != nil || p != filepath.Join("testdata", "esm", "ecosystem.config.mjs") {
		t.Errorf("Find(testdata/esm) = %q, %v", p, err)
	}
	dir := t.TempDir()
	if _, err := Find(dir); !errors.Is(err, fs.ErrNotExist) || err.Error() != dir+": no kin.yaml, kin.json or ecosystem.config.js: file does not exist" {
		t.Errorf("Find(empty dir) error = %v", err)
	}
}
