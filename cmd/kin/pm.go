package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/client"
)

// kinHome is $KIN_HOME, or ~/.kin.
func kinHome() (string, error) {
	if h := os.Getenv("KIN_HOME"); h != "" {
		return filepath.Abs(h)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory (%v): set KIN_HOME", err)
	}
	return filepath.Join(home, ".kin"), nil
}

// daemonClient returns a client for the daemon, starting the daemon when
// none runs and start is true.
func daemonClient(ctx context.Context, e *env, start bool) (*client.Client, error) {
	home, err := kinHome()
	if err != nil {
		return nil, err
	}
	c := client.New(home)
	if !start {
		return c, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	started, err := c.EnsureDaemon(ctx, exe)
	if err != nil {
		return nil, err
	}
	if started {
		fmt.Fprintf(e.stderr, "kin: daemon started (%s)\n", home)
	}
	return c, nil
}

// apiError turns the daemon's answer into the CLI's error: not found is a
// usage error (exit 2), the rest a failure (exit 1).
func apiError(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		msg := strings.TrimPrefix(ae.Message, "supervisor: ")
		if ae.NotFound {
			return &exitError{code: exitUsage, err: errors.New(msg)}
		}
		return &exitError{code: exitFailure, err: errors.New(msg)}
	}
	if errors.Is(err, client.ErrNoDaemon) {
		return &exitError{code: exitFailure, err: fmt.Errorf("%v: start an app with kin start, or run kin daemon", err)}
	}
	return err
}

// printInstances prints instances as a table, or a JSON array with asJSON.
func printInstances(w io.Writer, list []supervisor.InstanceInfo, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []supervisor.InstanceInfo{}
		}
		return json.NewEncoder(w).Encode(list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no apps: start one with kin start <script|binary|config>")
		return err
	}
	t := &table{
		headers: []string{"id", "name", "inst", "pid", "status", "restarts", "uptime", "cpu", "memory", "port", "last exit"},
		right:   map[string]bool{"id": true, "inst": true, "pid": true, "restarts": true, "uptime": true, "cpu": true, "memory": true, "port": true},
	}
	for _, in := range list {
		pid, up, port := "-", "-", "-"
		if in.PID != 0 {
			pid = strconv.Itoa(in.PID)
			up = formatUptime(time.Duration(in.UptimeMS) * time.Millisecond)
		}
		if in.Port != 0 {
			port = strconv.Itoa(in.Port)
		}
		status := string(in.Status)
		if in.RestartInMS > 0 {
			status += fmt.Sprintf(" (in %s)", formatUptime(time.Duration(in.RestartInMS)*time.Millisecond))
		}
		t.add(strconv.Itoa(in.ID), in.Name, strconv.Itoa(in.Instance), pid, status,
			strconv.Itoa(in.Restarts), up, fmt.Sprintf("%.1f%%", in.CPU), formatMemory(in.Memory), port, in.LastExit)
	}
	return t.write(w)
}

func formatUptime(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func formatMemory(b uint64) string {
	switch {
	case b == 0:
		return "-"
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KB", b>>10)
}

// failedInstances is an error (exit 1) naming the instances of names that
// are errored or stopped after an operation that should have them online.
func failedInstances(list []supervisor.InstanceInfo, names map[string]bool) error {
	var bad []string
	for _, in := range list {
		if names != nil && !names[in.Name] {
			continue
		}
		if in.Status == supervisor.StatusErrored {
			bad = append(bad, fmt.Sprintf("%s[%d]: %s", in.Name, in.Instance, in.LastExit))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("errored: %s (kin logs shows their output)", strings.Join(bad, "; "))}
}
