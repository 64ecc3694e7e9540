// Package config reads the files that describe apps for kin's process
// manager and turns them into supervisor.AppSpec values: kin's own kin.yaml
// or kin.json, and PM2 ecosystem files (ecosystem.config.js, evaluated with
// node, or its .json and .yaml forms).
//
// Both kinds share one set of keys: every key of supervisor.AppSpec's JSON
// form, PM2's keys and aliases (max_memory_restart, autorestart,
// exp_backoff_restart_delay, env_<profile>, …), and the camelCase spelling
// PM2 also accepts (maxMemoryRestart). A file is a mapping with an apps
// list and an optional nats mapping; a PM2 process file that is a bare list
// of apps is read too.
//
//	apps:
//	  - name: api
//	    script: server.js
//	    instances: max
//	    port: 3000
//	    env: {NODE_ENV: production}
//	    depends_on: [db]
//	  - name: db
//	    command: [redis-server, --port, "6380"]
//
// Loading changes nothing: the caller decides what to start or stop with
// the result. A file with any error yields no apps, and the error names the
// file, line, column and key of every problem found ("kin.yaml:9:5:
// apps[0].restart_dealy: unknown key (did you mean restart_delay?)").
// Errors begin with that location rather than with the package's name: it
// is what the reader acts on. Keys that kin accepts from PM2 but that
// change nothing come back as warnings.
//
// Where PM2 and kin differ, a file follows PM2: instances 0 means one per
// CPU, port also sets PORT in the app's environment, and a PM2 ecosystem
// file (named ecosystem.* or written in JavaScript) stops its apps with
// SIGINT unless it says otherwise.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinproc/kin/supervisor"
)

// Options says how to read a config file. The zero value reads the file's
// format from its extension, applies no profile, and evaluates JavaScript
// with the node found on PATH, for at most 10 s.
type Options struct {
	// Profile selects the env_<Profile> mapping of every app, merged over
	// its env (PM2's --env <profile>); empty means env alone.
	Profile string
	// Node is the node binary that evaluates ecosystem.config.js files;
	// empty means "node" looked up on PATH.
	Node string
	// Timeout bounds the evaluation of a JavaScript file; zero means 10 s.
	Timeout time.Duration
	// Format is "yaml", "json" or "js"; empty means by the file name's
	// extension (.yaml, .yml, .json, .js, .cjs, .mjs).
	Format string
	// Dir is the directory a relative cwd is resolved against; empty means
	// the config file's directory (for LoadBytes with a name that is no
	// path, such as "-", the current directory).
	Dir string
}

// File is a loaded config file.
type File struct {
	// Path is the file's absolute path, or the name given to LoadBytes when
	// that is not a path ("-").
	Path string
	// Apps are the apps, in file order, validated; empty only when the
	// file's apps list is (a file may hold NATS settings alone). Each app's
	// Source is Path, its Cwd is absolute, and its Command resolved (see
	// Resolve).
	Apps []supervisor.AppSpec
	// NATS are the settings of the top-level nats mapping (where the queue
	// and bus live, see supervisor.NATSSettings); nil when absent.
	NATS *supervisor.NATSSettings
	// Warnings describe settings that were accepted but change nothing in
	// kin (PM2's merge_logs, pid_file, …) or mean something slightly
	// different; each begins with its location, as errors do.
	Warnings []string
}

// Load reads the config file at path. Errors are an ErrorList: every
// problem found, each with the file, line and key.
func Load(path string, opts Options) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, ErrorList{{File: path, Msg: msg, Err: err}}
	}
	return load(path, path, data, opts)
}

// LoadBytes reads a config file whose contents are data; name is used in
// messages and, unless opts.Format is set, for the format (its extension).
// A JavaScript file is evaluated from a temporary copy, so relative
// require()s in it do not resolve; use Load for those.
func LoadBytes(name string, data []byte, opts Options) (*File, error) {
	return load(name, "", data, opts)
}

// load reads data, named name; path is the file on disk when there is one
// (node evaluates it in place).
func load(name, path string, data []byte, opts Options) (*File, error) {
	format, err := formatOf(name, opts.Format)
	if err != nil {
		return nil, ErrorList{{File: name, Msg: err.Error()}}
	}
	d := &decoder{file: name, opts: opts, pm2: isPM2File(name, format)}
	d.source = name
	if name != "" && name != "-" {
		if abs, err := filepath.Abs(name); err == nil {
			d.source = abs
		}
	}
	d.dir = opts.Dir
	if d.dir == "" {
		if name == "" || name == "-" {
			d.dir, _ = os.Getwd()
		} else {
			d.dir = filepath.Dir(d.source)
		}
	} else if abs, err := filepath.Abs(d.dir); err == nil {
		d.dir = abs
	}

	var root *value
	switch format {
	case "yaml":
		root, err = parseYAML(data)
	case "json":
		root, err = parseJSON(data)
	case "js":
		var out []byte
		out, err = evalJS(name, path, data, opts)
		if err != nil {
			return nil, ErrorList{err.(*Error)}
		}
		d.js = &jsLocator{src: data}
		root, err = parseJSON(out)
		if err != nil {
			return nil, ErrorList{{File: name, Msg: "node printed what is not JSON: " + err.Error(), Err: err}}
		}
	}
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, ErrorList{{File: name, Line: se.line, Column: se.col, Msg: se.msg}}
		}
		return nil, ErrorList{{File: name, Msg: err.Error(), Err: err}}
	}
	f := d.decodeFile(root)
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return f, nil
}

// configNames are the files Find looks for, in order.
var configNames = []string{
	"kin.yaml", "kin.yml", "kin.json",
	"ecosystem.config.js", "ecosystem.config.cjs", "ecosystem.config.mjs",
	"ecosystem.config.json", "ecosystem.config.yaml", "ecosystem.config.yml",
	"ecosystem.json",
}

// Find returns the path of the config file in dir: the first of kin.yaml,
// kin.yml, kin.json, ecosystem.config.js (.cjs, .mjs, .json, .yaml, .yml)
// and ecosystem.json that exists. When there is none the error wraps
// fs.ErrNotExist.
func Find(dir string) (string, error) {
	for _, name := range configNames {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no kin.yaml, kin.json or ecosystem.config.js: %w", dir, fs.ErrNotExist)
}

// formatOf returns the format of a file called name.
func formatOf(name, explicit string) (string, error) {
	switch explicit {
	case "yaml", "json", "js":
		return explicit, nil
	case "yml":
		return "yaml", nil
	case "":
	default:
		return "", fmt.Errorf("unknown config format %q: want yaml, json or js", explicit)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return "yaml", nil
	case ".json":
		return "json", nil
	case ".js", ".cjs", ".mjs":
		return "js", nil
	}
	return "", fmt.Errorf("unknown config file type: want .yaml, .yml, .json, .js, .cjs or .mjs")
}

// isPM2File reports whether a file is a PM2 ecosystem file rather than one
// written for kin. Both are read alike; a PM2 file only gets PM2's stop
// signal (SIGINT) by default, and warnings where kin differs.
func isPM2File(name, format string) bool {
	return format == "js" || strings.HasPrefix(strings.ToLower(filepath.Base(name)), "ecosystem")
}
