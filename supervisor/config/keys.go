package config

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/kinproc/kin/supervisor"
	"github.com/robfig/cron/v3"
	"golang.org/x/sys/unix"
)

// setting is how one key is read.
type setting struct {
	claim string // the setting it sets, for duplicate detection; "" when set claims itself
	set   func(d *decoder, a *app, k, v *value)
}

// settings maps every accepted app key to how it is read. It is filled in
// by init, since the functions refer to it.
var settings map[string]setting

// settingNames are the keys offered as suggestions for unknown ones.
var settingNames []string

// ignored holds PM2 keys that kin accepts and ignores silently: PM2
// internals, or what kin always does anyway.
var ignored = []string{
	"automation", "deep_monitoring", "disable_source_map_support", "disable_trace",
	"event_loop_inspector", "execute_command", "filter_env", "force", "install_url",
	"io", "kill_retry_time", "pmx", "post_update", "shutdown_with_message",
	"source", "source_map_support", "time", "trace", "username", "v8", "vizion",
	"windowsHide", "write",
}

// inert holds PM2 keys that kin accepts but that change nothing, with the
// warning given when they are set (to anything but their PM2 default).
var inert = map[string]struct {
	unless any // the value that needs no warning
	why    string
}{
	"merge_logs":      {false, "kin keeps one log per instance"},
	"combine_logs":    {false, "kin keeps one log per instance"},
	"log_file":        {false, "kin writes out_file and error_file, no combined log"},
	"log":             {false, "kin writes out_file and error_file, no combined log"},
	"log_date_format": {nil, "kin timestamps every line in its own format"},
	"log_type":        {nil, "kin logs plain lines"},
	"disable_logs":    {false, "kin always logs (set out_file and error_file to /dev/null)"},
	"pid_file":        {nil, "kin keeps pids in its state, not in files"},
	"pid":             {nil, "kin keeps pids in its state, not in files"},
	"watch_delay":     {nil, "kin's watcher debounces by itself"},
	"watch_options":   {nil, "kin's watcher has no chokidar options"},
	"stop_exit_codes": {nil, "not supported (restart: on-failure keeps apps that exit 0 stopped)"},
	"increment_var":   {nil, "not supported"},
	"namespace":       {nil, "kin has no namespaces"},
	"name_prefix":     {nil, "not supported"},
	"treekill":        {true, "kin always stops the whole process group"},
	"autostart":       {true, "kin starts every app it loads"},
}

func init() {
	settings = map[string]setting{
		"name":    {"name", (*decoder).setName},
		"command": {"", (*decoder).setCommand},
		"script":  {"script", (*decoder).setScript},
		"exec":    {"script", (*decoder).setScript},

		"interpreter":      {"interpreter", (*decoder).setInterpreter},
		"exec_interpreter": {"interpreter", (*decoder).setInterpreter},
		"interpreter_args": {"interpreter_args", (*decoder).setInterpreterArgs},
		"node_args":        {"interpreter_args", (*decoder).setInterpreterArgs},
		"args":             {"args", (*decoder).setArgs},
		"cwd":              {"cwd", (*decoder).setCwd},
		"env":              {"env", (*decoder).setEnv},

		"instances":    {"instances", (*decoder).setInstances},
		"instance_var": {"instance_var", (*decoder).setInstanceVar},
		"exec_mode":    {"exec_mode", (*decoder).setExecMode},
		"port":         {"port", (*decoder).setPort},
		"host":         {"host", func(d *decoder, a *app, k, v *value) { d.str(a, k, v, &a.spec.Host) }},

		"restart":                   {"restart", (*decoder).setRestart},
		"autorestart":               {"restart", (*decoder).setAutorestart},
		"restart_delay":             {"restart_delay", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.RestartDelay })},
		"backoff":                   {"backoff", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.Backoff })},
		"exp_backoff_restart_delay": {"backoff", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.Backoff })},
		"min_uptime":                {"min_uptime", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.MinUptime })},
		"max_restarts":              {"max_restarts", (*decoder).setMaxRestarts},
		"restart_window":            {"restart_window", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.RestartWindow })},

		"stop_signal":  {"stop_signal", (*decoder).setStopSignal},
		"kill_timeout": {"kill_timeout", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.KillTimeout })},

		"wait_ready":     {"wait_ready", func(d *decoder, a *app, k, v *value) { d.boolean(a, k, v, &a.spec.WaitReady) }},
		"ready":          {"ready", (*decoder).setReady},
		"listen_timeout": {"ready.timeout", durationSetter(func(a *app) *supervisor.Duration { return &a.spec.Ready.Timeout })},

		"max_memory":         {"max_memory", sizeSetter(func(a *app) *int64 { return &a.spec.MaxMemory })},
		"max_memory_restart": {"max_memory", sizeSetter(func(a *app) *int64 { return &a.spec.MaxMemory })},
		"memory_limit":       {"memory_limit", sizeSetter(func(a *app) *int64 { return &a.spec.MemoryLimit })},

		"cron":         {"cron", (*decoder).setCron},
		"cron_restart": {"cron", (*decoder).setCron},

		"watch":        {"watch", (*decoder).setWatch},
		"watch_ignore": {"watch_ignore", (*decoder).setWatchIgnore},
		"ignore_watch": {"watch_ignore", (*decoder).setWatchIgnore},

		"out_file":   {"out_file", pathSetter(func(a *app) *string { return &a.spec.OutFile })},
		"out":        {"out_file", pathSetter(func(a *app) *string { return &a.spec.OutFile })},
		"output":     {"out_file", pathSetter(func(a *app) *string { return &a.spec.OutFile })},
		"out_log":    {"out_file", pathSetter(func(a *app) *string { return &a.spec.OutFile })},
		"error_file": {"error_file", pathSetter(func(a *app) *string { return &a.spec.ErrorFile })},
		"error":      {"error_file", pathSetter(func(a *app) *string { return &a.spec.ErrorFile })},
		"err":        {"error_file", pathSetter(func(a *app) *string { return &a.spec.ErrorFile })},
		"err_file":   {"error_file", pathSetter(func(a *app) *string { return &a.spec.ErrorFile })},
		"err_log":    {"error_file", pathSetter(func(a *app) *string { return &a.spec.ErrorFile })},

		"depends_on":         {"depends_on", (*decoder).setDependsOn},
		"queue":              {"queue", (*decoder).setQueue},
		"append_env_to_name": {"append_env_to_name", func(d *decoder, a *app, k, v *value) { d.boolean(a, k, v, &a.appendEnv) }},

		"uid":  {"uid", rejectUser},
		"user": {"uid", rejectUser},
		"gid":  {"gid", rejectUser},
	}
	for _, k := range ignored {
		settings[k] = setting{k, func(*decoder, *app, *value, *value) {}}
	}
	for k, in := range inert {
		settings[k] = setting{k, func(d *decoder, a *app, key, v *value) {
			if b, ok := in.unless.(bool); ok && v.kind == kindBool && v.b == b {
				return
			}
			d.warnf(key, a.key(key), "ignored: %s", in.why)
		}}
	}
	for k := range settings {
		settingNames = append(settingNames, k)
	}
	sort.Strings(settingNames)
}

// camelToSnake turns maxMemoryRestart into max_memory_restart.
func camelToSnake(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Readers of scalar values. Each reports a wrong value at its key and
// leaves the destination alone.

func (d *decoder) str(a *app, k, v *value, dst *string) bool {
	if v.kind != kindString {
		d.errorf(k, a.key(k), "want a string, got %s", v.describe())
		return false
	}
	*dst = v.text
	return true
}

func (d *decoder) boolean(a *app, k, v *value, dst *bool) bool {
	if v.kind != kindBool {
		d.errorf(k, a.key(k), "want true or false, got %s", v.describe())
		return false
	}
	*dst = v.b
	return true
}

// integer reads a whole number, or a string holding one (PM2 accepts "4").
func integer(v *value) (int64, bool) {
	var t string
	switch v.kind {
	case kindNumber:
		t = v.text
	case kindString:
		t = strings.TrimSpace(v.text)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// stringList reads a string or a list of scalars. A string is split into
// words when split is set (args), else it is the only element.
func (d *decoder) stringList(a *app, k, v *value, split bool) ([]string, bool) {
	switch v.kind {
	case kindString:
		if !split {
			return []string{v.text}, true
		}
		words, err := SplitArgs(v.text)
		if err != nil {
			d.errorf(k, a.key(k), "%v in %s", err, v.describe())
			return nil, false
		}
		return words, true
	case kindList:
		out := make([]string, 0, len(v.list))
		for i, e := range v.list {
			s, ok := e.scalarText()
			if !ok {
				d.errorf(e, fmt.Sprintf("%s[%d]", a.key(k), i), "want a string, got %s", e.describe())
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	d.errorf(k, a.key(k), "want a string or a list of strings, got %s", v.describe())
	return nil, false
}

func durationSetter(field func(*app) *supervisor.Duration) func(*decoder, *app, *value, *value) {
	return func(d *decoder, a *app, k, v *value) {
		if dur, ok := d.duration(k, v, a.key(k)); ok {
			*field(a) = dur
		}
	}
}

// duration reads a number of milliseconds (PM2) or a Go duration string.
func (d *decoder) duration(k, v *value, key string) (supervisor.Duration, bool) {
	const want = `want a duration such as "5s" or a number of milliseconds`
	var dur supervisor.Duration
	switch v.kind {
	case kindNumber:
		f, err := strconv.ParseFloat(v.text, 64)
		if err != nil || math.Abs(f) > float64(math.MaxInt64)/1e6 {
			d.errorf(k, key, "%s, got %s", want, v.describe())
			return 0, false
		}
		dur = supervisor.Duration(f * 1e6)
	case kindString:
		p, err := supervisor.ParseDuration(strings.TrimSpace(v.text))
		if err != nil {
			d.errorf(k, key, "%s, got %s", want, v.describe())
			return 0, false
		}
		dur = p
	default:
		d.errorf(k, key, "%s, got %s", want, v.describe())
		return 0, false
	}
	if dur < 0 {
		d.errorf(k, key, "negative duration %s", v.describe())
		return 0, false
	}
	return dur, true
}

func sizeSetter(field func(*app) *int64) func(*decoder, *app, *value, *value) {
	return func(d *decoder, a *app, k, v *value) {
		if n, ok := d.size(k, v, a.key(k)); ok {
			*field(a) = n
		}
	}
}

// size reads a number of bytes or a size string ("512M") at key.
func (d *decoder) size(k, v *value, key string) (int64, bool) {
	const want = `want a size such as "512M" or a number of bytes`
	switch v.kind {
	case kindNumber:
		i, ok := integer(v)
		if !ok || i < 0 {
			d.errorf(k, key, "%s, got %s", want, v.describe())
			return 0, false
		}
		return i, true
	case kindString:
		s, err := supervisor.ParseSize(v.text)
		if err != nil || s < 0 {
			d.errorf(k, key, "%s, got %s", want, v.describe())
			return 0, false
		}
		return s, true
	}
	d.errorf(k, key, "%s, got %s", want, v.describe())
	return 0, false
}

func pathSetter(field func(*app) *string) func(*decoder, *app, *value, *value) {
	return func(d *decoder, a *app, k, v *value) {
		var s string
		if d.str(a, k, v, &s) {
			if s == "" {
				d.errorf(k, a.key(k), "empty path")
				return
			}
			*field(a) = s
		}
	}
}

func rejectUser(d *decoder, a *app, k, v *value) {
	d.errorf(k, a.key(k), "not supported: kin runs apps as the user it runs as (run a kin daemon as that user)")
}

func (d *decoder) setName(a *app, k, v *value) {
	var name string
	if !d.str(a, k, v, &name) {
		return
	}
	if msg := checkName(name); msg != "" {
		d.errorf(k, a.key(k), "%s", msg)
		return
	}
	a.spec.Name, a.nameKey = name, k
}

// checkName says what is wrong with name as supervisor.AppSpec.Validate
// sees it, or returns "".
func checkName(name string) string {
	s := supervisor.AppSpec{Name: name, Command: []string{"x"}}
	if err := s.Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), "supervisor: ")
		if msg == "app has no name" {
			return "empty name"
		}
		return strings.TrimPrefix(msg, "app ")
	}
	return ""
}

// setCommand reads kin's command (a list: the program and its arguments)
// or PM2's command (a string: an alias of script).
func (d *decoder) setCommand(a *app, k, v *value) {
	if v.kind == kindString {
		if d.claim(a, "script", k) {
			d.setScript(a, k, v)
		}
		return
	}
	if !d.claim(a, "command", k) {
		return
	}
	if v.kind != kindList {
		d.errorf(k, a.key(k), "want a list (the program and its arguments) or a string, got %s", v.describe())
		return
	}
	cmd, ok := d.stringList(a, k, v, false)
	if !ok {
		return
	}
	if len(cmd) == 0 || cmd[0] == "" {
		d.errorf(k, a.key(k), "empty command")
		return
	}
	a.command = cmd
}

func (d *decoder) setScript(a *app, k, v *value) {
	if !d.str(a, k, v, &a.script) {
		return
	}
	if strings.TrimSpace(a.script) == "" {
		d.errorf(k, a.key(k), "empty script")
	}
}

func (d *decoder) setInterpreter(a *app, k, v *value) {
	if d.str(a, k, v, &a.interp) && a.interp == "" {
		d.errorf(k, a.key(k), `empty interpreter (use "none" to run the script directly)`)
	}
}

func (d *decoder) setInterpreterArgs(a *app, k, v *value) {
	if l, ok := d.stringList(a, k, v, true); ok {
		a.interpArgs = l
	}
}

func (d *decoder) setArgs(a *app, k, v *value) {
	if l, ok := d.stringList(a, k, v, true); ok {
		a.args = l
	}
}

func (d *decoder) setCwd(a *app, k, v *value) {
	if d.str(a, k, v, &a.cwd) && a.cwd == "" {
		d.errorf(k, a.key(k), "empty path")
	}
}

func (d *decoder) setEnv(a *app, k, v *value) {
	if env, ok := d.envMap(k, v, a.key(k)); ok {
		a.env = env
	}
}

func (d *decoder) profileEnv(a *app, k, v *value) {
	if v.kind == kindNull {
		return
	}
	env, ok := d.envMap(k, v, a.key(k))
	if !ok {
		return
	}
	if a.profiles == nil {
		a.profiles = map[string]map[string]string{}
	}
	profile := strings.TrimPrefix(k.text, "env_")
	a.profiles[profile] = env
	if profile == d.opts.Profile {
		d.profileSeen = true
	}
}

// envMap reads an env mapping. Values may be strings, numbers or booleans;
// null is the empty string; lists and mappings become their JSON text, as
// PM2 does.
func (d *decoder) envMap(k, v *value, key string) (map[string]string, bool) {
	if v.kind != kindMap {
		d.errorf(k, key, "want a mapping of variable names to values, got %s", v.describe())
		return nil, false
	}
	env := make(map[string]string, len(v.keys))
	ok := true
	for i, name := range v.keys {
		val := v.vals[i]
		vkey := key + "." + name.text
		if name.text == "" || strings.ContainsAny(name.text, "=\x00") {
			d.errorf(name, vkey, "not a variable name: %q", name.text)
			ok = false
			continue
		}
		if text, scalar := val.scalarText(); scalar {
			env[name.text] = text
		} else if val.kind == kindNull {
			env[name.text] = ""
		} else {
			b, err := json.Marshal(val.toAny())
			if err != nil {
				d.errorf(name, vkey, "%v", err)
				ok = false
				continue
			}
			env[name.text] = string(b)
		}
		if strings.ContainsRune(env[name.text], 0) {
			d.errorf(name, vkey, "a NUL byte in the value")
			ok = false
		}
	}
	return env, ok
}

func (d *decoder) setInstances(a *app, k, v *value) {
	n, ok := integer(v)
	if !ok {
		if v.kind == kindString && strings.EqualFold(strings.TrimSpace(v.text), "max") {
			a.spec.Instances = -1
			return
		}
		d.errorf(k, a.key(k), `want a number or "max", got %s`, v.describe())
		return
	}
	switch {
	case n == 0: // PM2: 0 means one per CPU, as "max" does
		a.spec.Instances = -1
	case n == -1:
		a.spec.Instances = -1
		if d.pm2 {
			d.warnf(k, a.key(k), "-1 runs one instance per CPU (PM2 runs one fewer)")
		}
	case n < -1:
		d.errorf(k, a.key(k), `want a count, or "max" for one per CPU, got %s`, v.describe())
	case n > math.MaxInt32:
		d.errorf(k, a.key(k), "%s instances: too many", v.describe())
	default:
		a.spec.Instances = int(n)
	}
}

func (d *decoder) setInstanceVar(a *app, k, v *value) {
	var s string
	if !d.str(a, k, v, &s) {
		return
	}
	if s == "" || strings.ContainsAny(s, "=\x00") {
		d.errorf(k, a.key(k), "not a variable name: %q", s)
		return
	}
	a.spec.InstanceVar = s
}

func (d *decoder) setExecMode(a *app, k, v *value) {
	var s string
	if !d.str(a, k, v, &s) {
		return
	}
	switch s {
	case "fork", "fork_mode":
		a.fork = true
	case "cluster", "cluster_mode":
		a.cluster = true
	default:
		d.errorf(k, a.key(k), "want fork or cluster, got %s", v.describe())
	}
}

func (d *decoder) setPort(a *app, k, v *value) {
	n, ok := integer(v)
	if !ok || n < 0 || n > 65535 {
		d.errorf(k, a.key(k), "want a port number (1-65535), got %s", v.describe())
		return
	}
	a.spec.Port = int(n)
}

func (d *decoder) setRestart(a *app, k, v *value) {
	var s string
	if !d.str(a, k, v, &s) {
		return
	}
	switch p := supervisor.RestartPolicy(s); p {
	case supervisor.RestartAlways, supervisor.RestartOnFailure, supervisor.RestartNever:
		a.spec.Restart = p
	default:
		d.errorf(k, a.key(k), "want always, on-failure or never, got %s", v.describe())
	}
}

func (d *decoder) setAutorestart(a *app, k, v *value) {
	var b bool
	if d.boolean(a, k, v, &b) && !b {
		a.spec.Restart = supervisor.RestartNever
	}
}

func (d *decoder) setMaxRestarts(a *app, k, v *value) {
	n, ok := integer(v)
	if !ok || n < -1 || n > math.MaxInt32 {
		d.errorf(k, a.key(k), "want a count, or -1 for unlimited, got %s", v.describe())
		return
	}
	if n == 0 {
		d.warnf(k, a.key(k), "0 means the default budget (15 restarts a minute); restart: never stops restarts")
	}
	a.spec.MaxRestarts = int(n)
}

func (d *decoder) setStopSignal(a *app, k, v *value) {
	if v.kind != kindString && v.kind != kindNumber {
		d.errorf(k, a.key(k), "want a signal name such as SIGINT, got %s", v.describe())
		return
	}
	sig, err := supervisor.ParseSignal(v.text)
	if err != nil {
		d.errorf(k, a.key(k), "%v", err)
		return
	}
	a.spec.StopSignal = v.text
	if name := unix.SignalName(sig); name != "" {
		a.spec.StopSignal = name
	}
}

var readyKeys = []string{"kind", "url", "address", "delay", "timeout"}

// setReady reads a readiness mapping, or a string naming its kind.
func (d *decoder) setReady(a *app, k, v *value) {
	key := a.key(k)
	readKind := func(kk, kv *value, key string) {
		if kv.kind != kindString {
			d.errorf(kk, key, "want a string, got %s", kv.describe())
			return
		}
		switch r := supervisor.ReadyKind(kv.text); r {
		case supervisor.ReadyAlive, supervisor.ReadyIPC, supervisor.ReadyNotify, supervisor.ReadyListening, supervisor.ReadyHTTP, supervisor.ReadyTCP:
			a.spec.Ready.Kind = r
		default:
			d.errorf(kk, key, "want alive, ipc, notify, listening, http or tcp, got %s", kv.describe())
		}
	}
	a.readyValue = k
	switch v.kind {
	case kindString:
		readKind(k, v, key)
		return
	case kindMap:
	default:
		d.errorf(k, key, "want a mapping (kind, url, address, delay, timeout) or a kind, got %s", v.describe())
		return
	}
	for i, sk := range v.keys {
		sv := v.vals[i]
		skey := key + "." + sk.text
		if sv.kind == kindNull {
			continue
		}
		switch sk.text {
		case "kind":
			readKind(sk, sv, skey)
		case "url", "address":
			if sv.kind != kindString {
				d.errorf(sk, skey, "want a string, got %s", sv.describe())
				continue
			}
			if sk.text == "url" {
				a.spec.Ready.URL = sv.text
			} else {
				a.spec.Ready.Address = sv.text
			}
		case "delay":
			if dur, ok := d.duration(sk, sv, skey); ok {
				a.spec.Ready.Delay = dur
			}
		case "timeout":
			// listen_timeout sets it too; the error names the key as
			// written in ready.
			if prev, ok := a.claimed["ready.timeout"]; ok {
				line, _ := d.at(prev, a.key(prev))
				d.errorf(sk, skey, "sets what %s on line %d sets: keep one", prev.text, line)
				continue
			}
			a.claimed["ready.timeout"] = sk
			if dur, ok := d.duration(sk, sv, skey); ok {
				a.spec.Ready.Timeout = dur
			}
		default:
			msg := "unknown key"
			if s := suggest(sk.text, readyKeys); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.errorf(sk, skey, "%s", msg)
		}
	}
}

// cronParser reads what AppSpec.Cron documents: five fields or a
// descriptor such as @hourly or @every 1h.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (d *decoder) setCron(a *app, k, v *value) {
	if v.kind == kindNumber && v.text == "0" {
		return // PM2's way of saying none
	}
	var s string
	if !d.str(a, k, v, &s) {
		return
	}
	if _, err := cronParser.Parse(s); err != nil {
		d.errorf(k, a.key(k), "cron expression %q: %v", s, err)
		return
	}
	a.spec.Cron = s
}

// setWatch reads true (watch the app's directory), false, a path, or a
// list of paths.
func (d *decoder) setWatch(a *app, k, v *value) {
	if v.kind == kindBool {
		a.spec.Watch = nil
		if v.b {
			a.spec.Watch = []string{"."}
		}
		return
	}
	if v.kind != kindString && v.kind != kindList {
		d.errorf(k, a.key(k), "want true, false, a path or a list of paths, got %s", v.describe())
		return
	}
	if l, ok := d.stringList(a, k, v, false); ok {
		a.spec.Watch = l
	}
}

func (d *decoder) setWatchIgnore(a *app, k, v *value) {
	if l, ok := d.stringList(a, k, v, false); ok {
		a.spec.WatchIgnore = l
	}
}

func (d *decoder) setDependsOn(a *app, k, v *value) {
	l, ok := d.stringList(a, k, v, false)
	if !ok {
		return
	}
	for i, n := range l {
		if n == "" {
			d.errorf(k, fmt.Sprintf("%s[%d]", a.key(k), i), "empty app name")
			return
		}
	}
	a.spec.DependsOn = l
}
