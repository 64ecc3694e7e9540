package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seeds adds every file in testdata with the extension ext.
func seeds(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"+ext))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkLoad loads data and checks that it did not panic (the fuzzer sees
// that) and that every error names the file.
func checkLoad(t *testing.T, name string, data []byte) {
	start := time.Now()
	// A directory that does not exist: nothing in it is found.
	f, err := LoadBytes(name, data, Options{Dir: "/nonexistent/kin-fuzz"})
	if d := time.Since(start); d > 5*time.Second { // a pathological input must not stall a load
		t.Fatalf("SLOW %v", d)
	}
	if err == nil {
		if f == nil {
			t.Fatal("no file and no error")
		}
		for _, a := range f.Apps {
			if err := a.Validate(); err != nil {
				t.Fatalf("loaded an invalid app: %v", err)
			}
		}
		return
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %T %v: want an ErrorList", err, err)
	}
	for _, e := range list {
		if e.File != name || !strings.HasPrefix(e.Error(), name+":") {
			t.Fatalf("error %q does not begin with the file name", e)
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	seeds(f, ".yaml")
	for _, s := range []string{
		"apps:\n  - name: a\n    script: a.js\n",
		"apps: [{name: a, command: [x], depends_on: [a]}]",
		"x-a: &a {script: a.js}\napps: [{<<: *a, name: b}]\n",
		"apps:\n  - *missing\n",
		"apps:\n  - {name: a, script: a.js}\n   bad",
		"nats: {url: x}\n",
		"- {script: 'npm run $X'}\n",
		"apps: [{script: a, ready: {kind: http}}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLoad(t, "kin.yaml", data)
	})
}

func FuzzLoadJSON(f *testing.F) {
	seeds(f, ".json")
	for _, s := range []string{
		`{"apps": [{"name": "a", "script": "a.js"}]}`,
		`[{"script": "a.js", "instances": 1e400}]`,
		`{"apps": [{"name": "a", "command": ["x"], "env": {"A": [1, {"b": null}]}}]}`,
		`{"apps": [`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLoad(t, "kin.json", data)
	})
}
