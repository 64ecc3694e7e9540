package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/logfile"
)

func init() {
	register(&command{name: "logs", summary: "show (and follow) apps' output", run: runLogs})
}

func runLogs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "logs", "[name|id|all] [--lines N] [-f] [--json] [--err|--out]",
		"Show the last lines of the apps' stdout and stderr, merged by time, and with -f follow them.\nLines read: TIME  APP[INSTANCE] out|err  TEXT.")
	lines := fs.IntP("lines", "n", 15, "how many lines to show first")
	follow := fs.BoolP("follow", "f", false, "keep printing new lines until interrupted")
	asJSON := fs.Bool("json", false, "one JSON object per line: time, app, instance, stream, line")
	errOnly := fs.Bool("err", false, "stderr only")
	outOnly := fs.Bool("out", false, "stdout only")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := "all"
	if fs.NArg() > 1 {
		return usageErrorf("logs: name at most one app or instance id")
	}
	if fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	var list []supervisor.InstanceInfo
	if target == "all" {
		list, err = c.List(ctx)
	} else {
		var apps []supervisor.AppInfo
		apps, err = c.Describe(ctx, target)
		for _, a := range apps {
			list = append(list, a.Instances...)
		}
		// An instance id shows that instance only.
		if len(apps) == 1 && apps[0].Spec.Name != target {
			var one []supervisor.InstanceInfo
			for _, in := range list {
				if fmt.Sprint(in.ID) == target {
					one = append(one, in)
				}
			}
			list = one
		}
	}
	if err != nil {
		return apiError(err)
	}
	type source struct {
		app      string
		instance int
		stream   string
	}
	sources := map[string]source{}
	var paths []string
	for _, in := range list {
		for _, s := range []struct{ path, stream string }{{in.OutLog, "out"}, {in.ErrLog, "err"}} {
			if s.path == "" || (*errOnly && s.stream == "out") || (*outOnly && s.stream == "err") {
				continue
			}
			if _, dup := sources[s.path]; !dup {
				paths = append(paths, s.path)
			}
			sources[s.path] = source{in.Name, in.Instance, s.stream}
		}
	}
	if len(paths) == 0 {
		fmt.Fprintln(e.stderr, "kin: no logs (no apps, or their output is not logged)")
		return nil
	}
	width := 0
	for _, s := range sources {
		width = max(width, len(fmt.Sprintf("%s[%d]", s.app, s.instance)))
	}
	enc := json.NewEncoder(e.stdout)
	print := func(r logfile.Record) error {
		s := sources[r.Source]
		if *asJSON {
			var ts any
			if !r.Time.IsZero() {
				ts = r.Time
			}
			return enc.Encode(map[string]any{"time": ts, "app": s.app, "instance": s.instance, "stream": s.stream, "line": r.Line, "partial": r.Partial})
		}
		t := "                       "
		if !r.Time.IsZero() {
			t = r.Time.Local().Format("2006-01-02 15:04:05.000")
		}
		name := fmt.Sprintf("%s[%d]", s.app, s.instance)
		_, err := fmt.Fprintf(e.stdout, "%s  %-*s %s  %s\n", t, width, name, s.stream, r.Line)
		return err
	}
	recs, err := logfile.TailMany(paths, *lines)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := print(r); err != nil {
			return err
		}
	}
	if !*follow {
		return nil
	}
	err = logfile.FollowMany(ctx, paths, true, print)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
