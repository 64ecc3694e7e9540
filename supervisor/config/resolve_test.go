package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		script, interpreter string
		interpArgs, args    []string
		command             []string
		interp              string
	}{
		{"app.js", "", nil, nil, []string{"node", "app.js"}, "node"},
		{"app.mjs", "", []string{"--inspect"}, []string{"-p", "1"}, []string{"node", "--inspect", "app.mjs", "-p", "1"}, "node"},
		{"app.CJS", "", nil, nil, []string{"node", "app.CJS"}, "node"},
		{"app.ts", "", nil, nil, []string{"node", "app.ts"}, "node"},
		{"app.py", "", nil, []string{"x"}, []string{"python3", "app.py", "x"}, "python3"},
		{"app.py", "/opt/venv/bin/python", []string{"-u"}, nil, []string{"/opt/venv/bin/python", "-u", "app.py"}, "/opt/venv/bin/python"},
		{"app.js", "none", []string{"--inspect"}, []string{"a"}, []string{"app.js", "a"}, ""},
		{"./server", "", []string{"--inspect"}, nil, []string{"./server"}, ""},
		{"redis-server", "", nil, []string{"--port", "1"}, []string{"redis-server", "--port", "1"}, ""},
		{"tool.exe", "wine", nil, nil, []string{"wine", "tool.exe"}, "wine"},
	}
	for _, tt := range tests {
		command, interp := Resolve(tt.script, tt.interpreter, tt.interpArgs, tt.args)
		if !reflect.DeepEqual(command, tt.command) || interp != tt.interp {
			t.Errorf("Resolve(%q, %q, %q, %q) = %q, %q; want %q, %q",
				tt.script, tt.interpreter, tt.interpArgs, tt.args, command, interp, tt.command, tt.interp)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"a b  c", []string{"a", "b", "c"}, ""},
		{"\ta\nb ", []string{"a", "b"}, ""},
		{`--name "my app" --x='1 2'`, []string{"--name", "my app", "--x=1 2"}, ""},
		{`a""b ''`, []string{"ab", ""}, ""},
		{`"a \"q\" \$HOME \n"`, []string{`a "q" $HOME \n`}, ""},
		{`'a \ b'`, []string{`a \ b`}, ""},
		{`a\ b c\\d`, []string{"a b", `c\d`}, ""},
		{"a\\\nb", []string{"ab"}, ""},
		{`$HOME * ~`, []string{"$HOME", "*", "~"}, ""},
		{`'open`, nil, "unterminated ' quote"},
		{`"open`, nil, `unterminated " quote`},
		{`"open\"`, nil, `unterminated " quote`},
		{`end\`, nil, "a backslash ends the string"},
	}
	for _, tt := range tests {
		got, err := SplitArgs(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("SplitArgs(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"restart_dealy", "restart_delay"},
		{"instance", "instances"},
		{"scritp", "script"},
		{"max_memory_restrat", "max_memory_restart"},
		{"Watch", "watch"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, settingNames); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"a b", `"a b" 'c d'`, `a\ b`, `"\$x"`, "'", `"`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitArgs(s)
		if err != nil {
			return
		}
		// Quoting each word in single quotes splits back to the same words.
		var q string
		for _, w := range words {
			q += " '" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitArgs(q)
		if err != nil || len(again) != len(words) {
			t.Fatalf("SplitArgs(%q) = %q; requoted %q = %q, %v", s, words, q, again, err)
		}
		for i := range words {
			if again[i] != words[i] {
				t.Fatalf("SplitArgs(%q) = %q; requoted %q = %q", s, words, q, again)
			}
		}
	})
}
