package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/client"
)

func init() {
	for _, op := range []struct{ name, summary, about string }{
		{"stop", "stop an app's instances (name, id or all)", "Stop the instances gracefully (the stop signal, SIGKILL after the kill timeout); they stay listed as stopped."},
		{"restart", "stop and start an app's instances", "Stop and start the instances, all at once; a cluster app's socket stays open. Waits until they are online."},
		{"reload", "replace an app's instances one at a time, without downtime", "Start a new process per instance on the same socket, wait until it is ready, then stop the old one gracefully. If the new one never gets ready, the old one keeps running and reload fails."},
		{"delete", "stop an app and forget it", "Stop the instances and remove the app from the list."},
	} {
		op := op
		register(&command{name: op.name, summary: op.summary, run: func(ctx context.Context, e *env, args []string) error {
			return runTargetOp(ctx, e, op.name, op.about, args)
		}})
	}
	register(&command{name: "ls", summary: "list the apps' instances", run: runLs})
	register(&command{name: "describe", summary: "show an app's settings and instances", run: runDescribe})
	register(&command{name: "scale", summary: "set an app's number of instances", run: runScale})
	register(&command{name: "signal", summary: "send a signal to an app's instances", run: runSignal})
	register(&command{name: "save", summary: "save the app list for kin resurrect", run: runSave})
	register(&command{name: "resurrect", summary: "start the apps saved by kin save", run: runResurrect})
	register(&command{name: "flush", summary: "empty log files", run: runFlush})
}

func runTargetOp(ctx context.Context, e *env, name, about string, args []string) error {
	fs := newFlags(e, name, "<name|id|all> [--json]", about)
	asJSON := fs.Bool("json", false, "print the instances afterwards as a JSON array")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("%s: name one app, instance id, or all", name)
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	ops := map[string]func(context.Context, string) ([]supervisor.InstanceInfo, error){
		"stop": c.Stop, "restart": c.Restart, "reload": c.Reload, "delete": c.Delete,
	}
	list, err := ops[name](ctx, fs.Arg(0))
	if err != nil {
		return apiError(err)
	}
	return printInstances(e.stdout, list, *asJSON)
}

func runLs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ls", "[--json]", "List every instance: id, name, pid, status, restarts, uptime, CPU, memory (whole process tree).")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per instance")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := c.List(ctx)
	if err != nil {
		if isNoDaemon(err) {
			// Nothing runs: an empty list, not an error.
			return printInstances(e.stdout, nil, *asJSON)
		}
		return apiError(err)
	}
	return printInstances(e.stdout, list, *asJSON)
}

func isNoDaemon(err error) bool { return errors.Is(err, client.ErrNoDaemon) }

func runDescribe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "describe", "<name|id> [--json] [--env]", "Show an app's settings and its instances. Environment values are hidden unless --env.")
	asJSON := fs.Bool("json", false, "print a JSON array of apps")
	showEnv := fs.Bool("env", false, "show environment values")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("describe: name one app or instance id")
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	apps, err := c.Describe(ctx, fs.Arg(0))
	if err != nil {
		return apiError(err)
	}
	if !*showEnv {
		for i := range apps {
			for k := range apps[i].Spec.Env {
				apps[i].Spec.Env[k] = "(hidden: kin describe --env shows it)"
			}
			for k := range apps[i].Spec.CallerEnv {
				apps[i].Spec.CallerEnv[k] = "(hidden: kin describe --env shows it)"
			}
		}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(apps)
	}
	for _, a := range apps {
		s := a.Spec
		t := &table{headers: []string{"setting", "value"}}
		t.add("name", s.Name)
		t.add("command", fmt.Sprintf("%q", s.Command))
		if s.Cwd != "" {
			t.add("cwd", s.Cwd)
		}
		t.add("instances", strconv.Itoa(len(a.Instances)))
		if s.Port != 0 {
			t.add("port", fmt.Sprintf("%s:%d", s.Host, s.Port))
		}
		restart := string(s.Restart)
		if restart == "" {
			restart = "always"
		}
		t.add("restart", restart)
		if s.MaxMemory > 0 {
			t.add("max memory", formatMemory(uint64(s.MaxMemory)))
		}
		if s.MemoryLimit > 0 {
			t.add("memory limit", formatMemory(uint64(s.MemoryLimit)))
		}
		if s.Cron != "" {
			t.add("cron", s.Cron)
		}
		if len(s.Watch) > 0 {
			t.add("watch", fmt.Sprint(s.Watch))
		}
		if q := s.Queue; q != nil {
			conc := "one per CPU"
			if q.Concurrency > 0 {
				conc = strconv.Itoa(q.Concurrency)
			}
			v := fmt.Sprintf("%s (concurrency %s", q.Name, conc)
			if q.Timeout > 0 {
				v += ", timeout " + q.Timeout.D().String()
			}
			if q.MaxMemory > 0 {
				v += ", max memory " + formatMemory(uint64(q.MaxMemory))
			}
			t.add("queue", v+")")
		}
		if s.Source != "" {
			t.add("source", s.Source)
		}
		t.add("env", fmt.Sprintf("%d variables, and %d from the caller's environment", len(s.Env), len(s.CallerEnv)))
		if *showEnv {
			for k, v := range s.Env {
				t.add("  "+k, v)
			}
		}
		if len(a.Instances) > 0 {
			t.add("out log", a.Instances[0].OutLog)
			t.add("err log", a.Instances[0].ErrLog)
		}
		if err := t.write(e.stdout); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
		if err := printInstances(e.stdout, a.Instances, false); err != nil {
			return err
		}
	}
	return nil
}

func runScale(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "scale", "<name> <N> [--json]", "Run N instances of the app: new ones start, surplus ones stop.")
	asJSON := fs.Bool("json", false, "print the instances afterwards as a JSON array")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("scale: want an app name and a number of instances")
	}
	n, err := strconv.Atoi(fs.Arg(1))
	if err != nil || n < 1 {
		return usageErrorf("scale: %q: want a number of instances, 1 or more", fs.Arg(1))
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := c.Scale(ctx, fs.Arg(0), n)
	if err != nil {
		return apiError(err)
	}
	return printInstances(e.stdout, list, *asJSON)
}

func runSignal(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "signal", "<SIGNAL> <name|id|all>", "Send a signal (SIGUSR2, HUP, 10…) to the main process of each running instance.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("signal: want a signal and an app name, instance id or all")
	}
	if _, err := supervisor.ParseSignal(fs.Arg(0)); err != nil {
		return usageErrorf("signal: %v", err)
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	return apiError(c.Signal(ctx, fs.Arg(1), fs.Arg(0)))
}

func runSave(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "save", "", "Save the app list (and which apps run) for kin resurrect.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	path, err := c.Save(ctx)
	if err != nil {
		return apiError(err)
	}
	fmt.Fprintln(e.stdout, "saved to", path)
	return nil
}

func runResurrect(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "resurrect", "[--json]", "Start the apps saved by kin save (starting the daemon if needed).")
	asJSON := fs.Bool("json", false, "print the instances as a JSON array")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := daemonClient(ctx, e, true)
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := c.Resurrect(ctx)
	if err != nil {
		return apiError(err)
	}
	return printInstances(e.stdout, list, *asJSON)
}

func runFlush(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "flush", "[name|id|all]", "Empty the log files of an app (default: all apps) and remove their rotated files.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := "all"
	if fs.NArg() > 0 {
		target = fs.Arg(0)
	}
	c, err := daemonClient(ctx, e, false)
	if err != nil {
		return err
	}
	defer c.Close()
	files, err := c.Flush(ctx, target)
	if err != nil {
		return apiError(err)
	}
	fmt.Fprintf(e.stdout, "flushed %d log files\n", len(files))
	return nil
}
