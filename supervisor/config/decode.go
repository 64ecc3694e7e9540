package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kinproc/kin/supervisor"
)

// decoder turns a value tree into apps, collecting every error.
type decoder struct {
	file   string // the name in messages
	source string // AppSpec.Source and File.Path
	dir    string // what a relative cwd is relative to
	opts   Options
	pm2    bool
	js     *jsLocator // set for JavaScript files: positions come from the source

	appName string // the app being decoded, for jsLocator
	errs    ErrorList
	warns   []string

	profileSeen bool // some app has env_<opts.Profile>
}

// at returns the position to report for v, whose key path is key.
func (d *decoder) at(v *value, key string) (line, col int) {
	if d.js != nil {
		return d.js.find(key, d.appName)
	}
	if v == nil {
		return 0, 0
	}
	return v.line, v.col
}

func (d *decoder) errorf(v *value, key, format string, args ...any) {
	line, col := d.at(v, key)
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(v *value, key, format string, args ...any) {
	line, col := d.at(v, key)
	w := location(d.file, line, col) + ": "
	if key != "" {
		w += key + ": "
	}
	d.warns = append(d.warns, w+fmt.Sprintf(format, args...))
}

var topKeys = []string{"apps", "nats", "deploy"}

func (d *decoder) decodeFile(root *value) *File {
	f := &File{Path: d.source}
	var apps *value
	switch root.kind {
	case kindList:
		apps = root // a PM2 process file: a bare list of apps
	case kindMap:
		for i, k := range root.keys {
			v := root.vals[i]
			switch k.text {
			case "apps":
				apps = v
			case "nats":
				if v.kind != kindMap && v.kind != kindNull {
					d.errorf(k, "nats", "want a mapping, got %s", v.describe())
					continue
				}
				if v.kind == kindMap {
					f.NATS = d.decodeNATS(k, v)
				}
			case "deploy":
				d.warnf(k, "deploy", "ignored: kin does not deploy")
			default:
				if strings.HasPrefix(k.text, "x-") {
					continue // an extension field, as in Compose files: a place for YAML anchors
				}
				msg := "unknown key"
				if s := suggest(k.text, topKeys); s != "" {
					msg += " (did you mean " + s + "?)"
				} else if _, ok := settings[k.text]; ok {
					msg += " (apps go in an apps list)"
				}
				d.errorf(k, k.text, "%s", msg)
			}
		}
		if apps == nil && f.NATS == nil && len(d.errs) == 0 {
			d.errorf(root, "", "no apps: want an apps list")
		}
	case kindNull:
		d.errorf(root, "", "empty: want an apps list")
		return nil
	default:
		d.errorf(root, "", "want a mapping with an apps list, got %s", root.describe())
		return nil
	}
	if apps != nil {
		var decoded []*app
		switch apps.kind {
		case kindList:
			for i, v := range apps.list {
				if a := d.decodeApp(fmt.Sprintf("apps[%d]", i), v); a != nil {
					decoded = append(decoded, a)
				}
			}
		case kindMap: // one app, as PM2 allows
			if a := d.decodeApp("apps", apps); a != nil {
				decoded = append(decoded, a)
			}
		case kindNull:
		default:
			d.errorf(root.keys[slices.Index(root.vals, apps)], "apps", "want a list of apps, got %s", apps.describe())
			return nil
		}
		if len(d.errs) == 0 {
			d.checkApps(decoded)
		}
		for _, a := range decoded {
			f.Apps = append(f.Apps, a.spec)
		}
	}
	if d.opts.Profile != "" && !d.profileSeen && len(f.Apps) > 0 {
		d.warnf(nil, "", "no app has env_%s: the profile changes nothing", d.opts.Profile)
	}
	f.Warnings = d.warns
	return f
}

// app is one app being decoded.
type app struct {
	v    *value // the app's mapping
	path string // "apps[1]"
	spec supervisor.AppSpec

	claimed map[string]*value // setting → the key that set it
	nerrs   int               // errors before this app

	nameKey    *value
	script     string
	command    []string
	interp     string
	interpArgs []string
	args       []string
	cwd        string
	env        map[string]string
	profiles   map[string]map[string]string
	cluster    bool
	fork       bool
	appendEnv  bool
	readyValue *value
}

func (a *app) key(k *value) string { return a.path + "." + k.text }

// claim records that key k sets setting; two keys setting the same thing
// (max_memory and max_memory_restart) are an error.
func (d *decoder) claim(a *app, setting string, k *value) bool {
	if prev, ok := a.claimed[setting]; ok {
		line, _ := d.at(prev, a.key(prev))
		where := ""
		if line > 0 {
			where = fmt.Sprintf(" on line %d", line)
		}
		d.errorf(k, a.key(k), "sets what %s%s sets: keep one", prev.text, where)
		return false
	}
	a.claimed[setting] = k
	return true
}

// decodeApp reads the app v, whose key path is path ("apps[1]").
func (d *decoder) decodeApp(path string, v *value) *app {
	a := &app{v: v, path: path, claimed: map[string]*value{}, nerrs: len(d.errs)}
	d.appName = ""
	if v.kind != kindMap {
		d.errorf(v, a.path, "want a mapping, got %s", v.describe())
		return nil
	}
	if n := v.get("name"); n != nil && n.kind == kindString {
		d.appName = n.text
	}
	for j, k := range v.keys {
		val := v.vals[j]
		name := k.text
		s, ok := settings[name]
		if !ok && strings.HasPrefix(name, "x-") {
			continue // an extension field
		}
		if !ok && strings.HasPrefix(name, "env_") {
			d.profileEnv(a, k, val)
			continue
		}
		if !ok {
			// PM2 accepts every key in camelCase too.
			if snake := camelToSnake(name); snake != name {
				s, ok = settings[snake]
			}
		}
		if !ok {
			msg := "unknown key"
			if sug := suggest(name, settingNames); sug != "" {
				msg += " (did you mean " + sug + "?)"
			}
			d.errorf(k, a.key(k), "%s", msg)
			continue
		}
		if val.kind == kindNull {
			continue // as PM2 does: null is unset
		}
		if s.claim != "" && !d.claim(a, s.claim, k) {
			continue
		}
		s.set(d, a, k, val)
	}
	if len(d.errs) > a.nerrs {
		return nil
	}
	d.finish(a)
	if len(d.errs) > a.nerrs {
		return nil
	}
	return a
}

// finish builds the spec from what decodeApp read: the environment for the
// profile, paths, the command, and defaults; then validates it.
func (d *decoder) finish(a *app) {
	s := &a.spec
	s.Source = d.source

	// Environment: env, then env_<profile> over it (PM2's --env).
	var profile map[string]string
	if d.opts.Profile != "" {
		profile = a.profiles[d.opts.Profile]
	}
	if a.env != nil || profile != nil {
		s.Env = make(map[string]string, len(a.env)+len(profile))
		for k, v := range a.env {
			s.Env[k] = v
		}
		for k, v := range profile {
			s.Env[k] = v
		}
	}

	// Paths: cwd relative to the file's directory, the rest to cwd.
	s.Cwd = d.dir
	if a.cwd != "" {
		s.Cwd = absPath(d.dir, expandHome(a.cwd))
	}
	if s.OutFile != "" {
		s.OutFile = absPath(s.Cwd, expandHome(s.OutFile))
	}
	if s.ErrorFile != "" {
		s.ErrorFile = absPath(s.Cwd, expandHome(s.ErrorFile))
	}

	d.command(a)
	if len(d.errs) > a.nerrs {
		return
	}

	if s.Name == "" {
		base := a.script
		if base == "" {
			base = s.Command[0]
		}
		if f := strings.Fields(base); len(f) > 0 {
			base = f[0]
		}
		base = filepath.Base(base)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
		if msg := checkName(s.Name); msg != "" {
			d.errorf(a.v, a.path+".name", "no name, and the one from the script is wrong: %s", msg)
			return
		}
	}
	if a.appendEnv && d.opts.Profile != "" {
		s.Name += "-" + d.opts.Profile
	}
	d.appName = s.Name

	// Ports: PM2 gives the app its port as PORT; in cluster mode a PM2
	// app often names its port in env only.
	if s.Port == 0 && a.cluster {
		if p, err := strconv.Atoi(s.Env["PORT"]); err == nil && p > 0 && p <= 65535 {
			s.Port = p
		} else {
			d.warnf(a.claimed["exec_mode"], a.path+".exec_mode", "kin shares one listening socket between instances only when port is set; without it each instance listens by itself")
		}
	}
	if s.Port != 0 {
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		port := strconv.Itoa(s.Port)
		if p, ok := s.Env["PORT"]; ok && p != port {
			d.warnf(a.claimed["port"], a.path+".port", "replaces env PORT=%s, as PM2 does", p)
		}
		s.Env["PORT"] = port
		if a.fork && !a.cluster {
			d.warnf(a.claimed["port"], a.path+".port", "kin binds port %d itself and hands the socket to the app (PM2 in fork mode only sets PORT)", s.Port)
		}
	}
	if s.Ready.Kind == supervisor.ReadyHTTP && s.Ready.URL == "" {
		d.errorf(a.readyValue, a.path+".ready", "kind http needs url")
	}
	if s.Ready.Kind == supervisor.ReadyTCP && s.Ready.Address == "" {
		d.errorf(a.readyValue, a.path+".ready", "kind tcp needs address")
	}

	// PM2 stops apps with SIGINT; apps written for it handle that.
	if d.pm2 && s.StopSignal == "" {
		s.StopSignal = "SIGINT"
	}

	if err := s.Validate(); err != nil && len(d.errs) == a.nerrs {
		d.errs = append(d.errs, d.appError(a, err))
	}
}

func (d *decoder) appError(a *app, err error) *Error {
	line, col := d.at(a.v, a.path)
	msg := strings.TrimPrefix(err.Error(), "supervisor: ")
	return &Error{File: d.file, Line: line, Column: col, Key: a.path, Msg: msg, Err: err}
}

// command sets the spec's Command, Script and Interpreter.
func (d *decoder) command(a *app) {
	s := &a.spec
	if a.command != nil {
		for _, name := range []string{"args", "interpreter_args"} {
			if k := a.claimed[name]; k != nil {
				d.errorf(k, a.key(k), "with command, put the arguments in command")
			}
		}
		s.Command = a.command
		s.Script = a.script
		s.Interpreter = a.interp
		if s.Interpreter == "" {
			s.Interpreter = knownInterpreter(s.Command[0])
		}
		return
	}
	if a.script == "" {
		d.errorf(a.v, a.path, "no script or command")
		return
	}
	s.Script = a.script
	script, args := expandHome(a.script), a.args
	interp := a.interp
	if interp != "" && interp != InterpreterNone {
		interp = expandHome(interp)
		if strings.ContainsRune(interp, '/') {
			interp = absPath(s.Cwd, interp)
		}
	}

	// A script with blanks that names no file is a command line, as in
	// PM2 ("npm run start"). kin runs it without a shell unless it needs
	// one.
	if strings.ContainsAny(script, " \t") && a.interp == "" && !isFile(absPath(s.Cwd, script)) {
		k := a.claimed["script"]
		if strings.ContainsAny(script, shellMeta) || strings.ContainsRune(strings.Fields(script)[0], '=') {
			if len(args) > 0 {
				d.errorf(a.claimed["args"], a.path+".args", "a script that is a shell command line takes no args")
				return
			}
			d.warnf(k, a.key(k), "a shell command line: runs with sh -c")
			s.Command = []string{"sh", "-c", script}
			return
		}
		words, err := SplitArgs(script)
		if err != nil || len(words) == 0 {
			d.errorf(k, a.key(k), "cannot split the command line: %v", err)
			return
		}
		script, args = words[0], append(words[1:len(words):len(words)], args...)
	}

	if d.pm2 && interp == "" && DefaultInterpreter(script) == "" && pm2RunsWithNode(absPath(s.Cwd, script)) {
		interp = "node"
	}
	interpreted := interp != InterpreterNone && (interp != "" || DefaultInterpreter(script) != "")
	switch {
	case filepath.IsAbs(script):
	case strings.ContainsRune(script, '/'), interpreted, isFile(filepath.Join(s.Cwd, script)):
		script = filepath.Join(s.Cwd, script)
	default:
		// A bare name that is no file here: looked up on PATH at start.
	}
	if !interpreted && len(a.interpArgs) > 0 {
		k := a.claimed["interpreter_args"]
		d.warnf(k, a.key(k), "ignored: the script runs without an interpreter")
	}
	s.Command, s.Interpreter = Resolve(script, interp, a.interpArgs, args)
	if s.Interpreter == "" {
		s.Interpreter = knownInterpreter(s.Command[0])
	}
}

// knownInterpreter returns program if it is one of the interpreters kin
// picks by extension (so that "command: [node, app.js]" is a Node app),
// else "".
func knownInterpreter(program string) string {
	base := filepath.Base(program)
	for _, in := range interpreters {
		if base == in {
			return program
		}
	}
	if base == "nodejs" {
		return program
	}
	return ""
}

// pm2RunsWithNode reports whether PM2 would run the file at path, whose
// extension names no interpreter, with node: it does so for every text
// file (Express's bin/www). kin runs a text file that starts with #! and is
// executable directly instead, so that its own interpreter runs it.
func pm2RunsWithNode(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	head := make([]byte, 512)
	n, _ := f.Read(head)
	head = head[:n]
	if bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(head[:max(0, n-3)]) {
		return false // a binary
	}
	return !bytes.HasPrefix(head, []byte("#!")) || st.Mode()&0o111 == 0
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// expandHome replaces a leading ~/ with the home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// checkApps checks what involves several apps: unique names, and
// dependencies that exist and form no cycle.
func (d *decoder) checkApps(apps []*app) {
	byName := map[string]*app{}
	var names []string
	for _, a := range apps {
		d.appName = a.spec.Name
		if prev, dup := byName[a.spec.Name]; dup {
			k := a.nameKey
			if k == nil {
				k = a.v
			}
			line, _ := d.at(prev.nameKey, prev.path+".name")
			if prev.nameKey == nil {
				line, _ = d.at(prev.v, prev.path)
			}
			where := prev.path
			if line > 0 {
				where += fmt.Sprintf(" on line %d", line)
			}
			d.errorf(k, a.path+".name", "duplicate app name %q (also %s)", a.spec.Name, where)
			continue
		}
		byName[a.spec.Name] = a
		names = append(names, a.spec.Name)
	}
	for _, a := range apps {
		d.appName = a.spec.Name
		k := a.claimed["depends_on"]
		for i, dep := range a.spec.DependsOn {
			key := fmt.Sprintf("%s.%s[%d]", a.path, k.text, i)
			switch {
			case dep == a.spec.Name:
				d.errorf(k, key, "%s depends on itself", dep)
			case byName[dep] == nil:
				msg := fmt.Sprintf("unknown app %q", dep)
				if s := suggest(dep, names); s != "" {
					msg += " (did you mean " + s + "?)"
				}
				d.errorf(k, key, "%s", msg)
			}
		}
	}
	if len(d.errs) > 0 {
		return
	}
	// Cycles: a depth-first walk in file order; the first cycle found is
	// reported at the depends_on of the app it was entered from.
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(a *app) bool
	visit = func(a *app) bool {
		state[a.spec.Name] = visiting
		stack = append(stack, a.spec.Name)
		for _, dep := range a.spec.DependsOn {
			switch state[dep] {
			case visiting:
				i := slices.Index(stack, dep)
				cycle := append(slices.Clone(stack[i:]), dep)
				start := byName[dep]
				d.appName = start.spec.Name
				k := start.claimed["depends_on"]
				d.errorf(k, start.path+"."+k.text, "dependency cycle: %s", strings.Join(cycle, " -> "))
				return false
			case unvisited:
				if !visit(byName[dep]) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[a.spec.Name] = done
		return true
	}
	for _, a := range apps {
		if state[a.spec.Name] == unvisited && !visit(a) {
			return
		}
	}
}
