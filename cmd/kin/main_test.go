package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// binDir holds the kin binary and example programs, built once for the
// package's tests: the CLI is tested as users run it.
var binDir string

// raceEnabled is set by race_test.go when the tests run with -race.
var raceEnabled bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kin-cli-test")
	if err != nil {
		panic(err)
	}
	root, _ := filepath.Abs("../..")
	builds := [][]string{{"build", "-o", dir + "/", "./cmd/kin", "./examples/echo-worker", "./examples/cluster-go"}}
	if raceEnabled {
		// The daemon is a concurrent Go program that the process-manager
		// tests drive for real: under -race they run a daemon built with
		// -race too (race/kin, see newPM).
		builds = append(builds, []string{"build", "-race", "-o", dir + "/race/", "./cmd/kin"})
	}
	for i, args := range builds {
		build := exec.Command("go", args...)
		build.Dir = root
		if i == 0 {
			// Static, as the README builds kin. -race needs cgo.
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building kin: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	binDir = dir
	code := kintest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// kin runs the built binary with args and stdin, returning stdout, stderr
// and the exit code.
func kin(t testing.TB, stdin string, args ...string) (string, string, int) {
	if t != nil {
		t.Helper()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kin"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		panic(fmt.Sprintf("kin %v: %v", args, err))
	}
	return out.String(), errb.String(), code
}

func TestUsage(t *testing.T) {
	t.Parallel()
	out, _, code := kin(t, "", "help")
	if code != 0 || !strings.Contains(out, "pool") || !strings.Contains(out, "tree") {
		t.Fatalf("help: %d %q", code, out)
	}
	_, errOut, code := kin(t, "")
	if code != 2 || !strings.Contains(errOut, "Usage: kin") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	_, errOut, code = kin(t, "", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	_, errOut, code = kin(t, "", "pool", "--workers", "x", "--", "true")
	if code != 2 || !strings.Contains(errOut, "invalid argument") {
		t.Fatalf("bad flag: %d %q", code, errOut)
	}
	_, errOut, code = kin(t, "", "help", "pool")
	if code != 0 || !strings.Contains(errOut, "--unordered") {
		t.Fatalf("help pool: %d %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, code := kin(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "kin ") {
		t.Fatalf("version: %d %q", code, out)
	}
	out, _, _ = kin(t, "", "version", "--json")
	if !strings.Contains(out, `"go":"go1.`) {
		t.Fatalf("version --json: %q", out)
	}
}
