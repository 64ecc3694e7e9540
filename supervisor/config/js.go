package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// evalScript is the program node runs to evaluate a JavaScript config: it
// imports the file (argv[1]; CommonJS or ES module, as Node decides for that
// file), takes module.exports or the default export, and writes it as JSON
// to the file argv[2] (stdout is the config's own, for console.log). Errors
// are left uncaught so that node prints them with the file's line.
const evalScript = `import { pathToFileURL } from "node:url";
import { writeFileSync } from "node:fs";
const ns = await import(pathToFileURL(process.argv[1]).href);
const v = ns.default !== undefined ? ns.default : ns;
let out;
try {
  out = JSON.stringify(v);
} catch (e) {
  process.stderr.write("cannot turn the exported value into JSON: " + e.message + "\n");
  process.exit(1);
}
writeFileSync(process.argv[2], out === undefined ? "null" : out);
process.exit(0);
`

// defaultTimeout bounds a JavaScript evaluation when Options.Timeout is 0.
const defaultTimeout = 10 * time.Second

// evalJS evaluates the JavaScript config file named name with node and
// returns what it exports, as JSON. path is the file on disk; when empty,
// data is evaluated from a temporary copy. Errors are *Error.
func evalJS(name, path string, data []byte, opts Options) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "kin-config-")
	if err != nil {
		return nil, &Error{File: name, Msg: err.Error(), Err: err}
	}
	defer os.RemoveAll(tmp)
	if path == "" {
		path = filepath.Join(tmp, filepath.Base(name))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, &Error{File: name, Msg: err.Error(), Err: err}
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: name, Msg: err.Error(), Err: err}
	}
	outFile := filepath.Join(tmp, "exports.json")
	node := opts.Node
	if node == "" {
		node = "node"
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "-e", evalScript, abs, outFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// A config that leaves a child holding node's stderr must not hang us.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		out, err := os.ReadFile(outFile)
		if err != nil {
			return nil, &Error{File: name, Msg: "node wrote no exports: " + err.Error(), Err: err}
		}
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, &Error{File: name, Msg: fmt.Sprintf("node did not finish evaluating it within %v%s", timeout, tail(stderr.Bytes())), Err: ctx.Err()}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return nil, &Error{File: name, Msg: fmt.Sprintf("cannot run node to evaluate it: %v", err), Err: err}
	}
	e := nodeError(abs, stderr.Bytes())
	e.File, e.Err = name, fmt.Errorf("node: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	return nil, e
}

// tail returns the last lines of node's stderr, for a message.
func tail(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return ": " + strings.Join(lines, "\n")
}

var (
	// nodeHeaderRE matches the first line of an uncaught error node prints:
	// "/path/file.js:4" or "file:///path/file.mjs:4".
	nodeHeaderRE = lazyRegexp(`^(?:file://)?(.+):(\d+)$`)
	// nodeErrorRE matches the line naming the error: "SyntaxError: …",
	// "Error [ERR_MODULE_NOT_FOUND]: …".
	nodeErrorRE = lazyRegexp(`^(?:[A-Za-z_$][\w$]*)(?: \[[A-Z0-9_]+\])?: `)
)

// nodeError makes an Error of what node printed on stderr for a config
// file at abs: the error's message, with the file's line (and column, from
// the caret node draws under the source line) when node gave one.
func nodeError(abs string, stderr []byte) *Error {
	lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
	e := &Error{}
	// "path:line", the source line, a caret line, a blank line, the error.
	if m := nodeHeaderRE.FindStringSubmatch(lines[0]); m != nil && sameFile(m[1], abs) {
		e.Line, _ = strconv.Atoi(m[2])
		if len(lines) > 2 {
			if i := strings.IndexByte(lines[2], '^'); i >= 0 && strings.Trim(lines[2], " ^") == "" {
				e.Column = i + 1
			}
		}
	}
	for _, l := range lines {
		if nodeErrorRE.MatchString(l) || strings.HasPrefix(l, "cannot turn the exported value") {
			e.Msg = l
			break
		}
	}
	if e.Msg == "" {
		e.Msg = "node failed" + tail(stderr)
	}
	if e.Line == 0 {
		// A runtime error: the first stack frame in the file.
		frame := regexp.MustCompile(`\(?(?:file://)?` + regexp.QuoteMeta(abs) + `:(\d+):(\d+)\)?`)
		if m := frame.FindStringSubmatch(string(stderr)); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Column, _ = strconv.Atoi(m[2])
		}
	}
	return e
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// jsLocator finds, best effort, the line of a key in a JavaScript config's
// source: after evaluation only the exported values are left.
type jsLocator struct {
	src   []byte
	lines []string
}

var indexRE = lazyRegexp(`\[\d+\]$`)

// find returns the line and column of the last key in path ("apps[1].env"
// → env), searching from the line that names app (when found) onwards;
// without such a line, only a key that occurs once in the file is found.
func (l *jsLocator) find(path, app string) (line, col int) {
	if path == "" {
		return 0, 0 // the whole file
	}
	if l.lines == nil {
		l.lines = strings.Split(string(l.src), "\n")
	}
	key := path
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	key = indexRE.ReplaceAllString(key, "")
	if strings.HasPrefix(key, "apps[") || key == "" {
		key = "name"
	}
	keyRE, err := regexp.Compile(`(^|[\s{,])(["'` + "`" + `]?)` + regexp.QuoteMeta(key) + `["'` + "`" + `]?\s*:`)
	if err != nil {
		return 0, 0
	}
	start := -1
	if app != "" {
		nameRE := regexp.MustCompile(`(^|[\s{,])["']?name["']?\s*:\s*["'` + "`" + `]` + regexp.QuoteMeta(app) + `["'` + "`" + `]`)
		for i, ln := range l.lines {
			if nameRE.MatchString(ln) {
				start = i
				break
			}
		}
	}
	if start >= 0 {
		// The key may come before name in the app's object: look back to
		// the line that opens it, then forward.
		from := start
		for from > 0 && !strings.Contains(l.lines[from], "{") {
			from--
		}
		for i := from; i < len(l.lines); i++ {
			if m := keyRE.FindStringSubmatchIndex(l.lines[i]); m != nil {
				return i + 1, m[4] + 1
			}
		}
		return start + 1, 0
	}
	found := 0
	for i, ln := range l.lines {
		if m := keyRE.FindStringSubmatchIndex(ln); m != nil {
			if found != 0 {
				return 0, 0 // ambiguous
			}
			found, col = i+1, m[4]+1
		}
	}
	return found, col
}
