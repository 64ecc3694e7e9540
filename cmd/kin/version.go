package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{name: "version", summary: "print kin's version", run: runVersion})
}

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module or VCS information Go records.
var version = ""

func versionInfo() (v, commit string) {
	v = version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				commit = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	return v, commit
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "[--json]", "Print kin's version.")
	asJSON := fs.Bool("json", false, "print a JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v, commit := versionInfo()
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]string{
			"version": v, "commit": commit, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	}
	if commit != "" {
		v += " (" + commit + ")"
	}
	fmt.Fprintf(e.stdout, "kin %s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
