package config

import (
	"errors"
	"path/filepath"
	"strings"
)

// InterpreterNone, given as the interpreter, runs a script directly even
// when its extension names an interpreter (PM2's interpreter: none).
const InterpreterNone = "none"

// interpreters maps a script's extension to the interpreter that runs it,
// as PM2's does, except: python3 rather than python (which is Python 2 or
// absent on current systems), and node rather than bun for TypeScript
// (Node strips types by default from 22.18 and 23.6; kin's Node support —
// IPC channel, preload, cluster mode — needs node).
var interpreters = map[string]string{
	".js":  "node",
	".mjs": "node",
	".cjs": "node",
	".ts":  "node",
	".mts": "node",
	".cts": "node",
	".py":  "python3",
	".sh":  "bash",
	".rb":  "ruby",
	".php": "php",
	".pl":  "perl",
}

// DefaultInterpreter returns the interpreter that runs script by its
// extension ("node" for app.js, "python3" for app.py), or "" when the
// script is run directly.
func DefaultInterpreter(script string) string {
	return interpreters[strings.ToLower(filepath.Ext(script))]
}

// Resolve returns the command line that runs script with args, and the
// interpreter that runs it ("" when the script runs directly). The
// interpreter is interpreter when not empty, none when interpreter is
// InterpreterNone, else DefaultInterpreter(script); interpreterArgs (PM2's
// node_args) go between the interpreter and the script, and are dropped
// when there is no interpreter. script is used as given: a relative path is
// relative to the app's working directory, and a bare name is looked up on
// PATH when the app starts.
//
//	Resolve("app.js", "", []string{"--max-old-space-size=512"}, []string{"-p", "3000"})
//	// → [node --max-old-space-size=512 app.js -p 3000], "node"
func Resolve(script, interpreter string, interpreterArgs, args []string) (command []string, interp string) {
	switch interpreter {
	case InterpreterNone:
	case "":
		interp = DefaultInterpreter(script)
	default:
		interp = interpreter
	}
	if interp == "" {
		command = make([]string, 0, 1+len(args))
		command = append(command, script)
		return append(command, args...), ""
	}
	command = make([]string, 0, 2+len(interpreterArgs)+len(args))
	command = append(command, interp)
	command = append(command, interpreterArgs...)
	command = append(command, script)
	return append(command, args...), interp
}

// SplitArgs splits s into words as a POSIX shell does, without expanding
// anything: words are separated by blanks; single quotes keep everything up
// to the next single quote; double quotes keep everything up to the next
// unescaped double quote, where a backslash escapes only $ ` " \ and a
// newline; elsewhere a backslash keeps the next character. PM2 splits a
// string args or node_args likewise.
func SplitArgs(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated " quote`)
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("a backslash ends the string")
			}
			i++
			if s[i] == '\n' {
				continue
			}
			inWord = true
			cur.WriteByte(s[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// shellMeta holds the characters that make a command line need a shell.
const shellMeta = "|&;<>()$`*?[]{}~!#\n"
