package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// Exit codes: 0 success, 1 the work failed (a task, a command), 2 usage
// error, 130 interrupted.
const (
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// exitError carries an exit code; a nil err means "exit with code, quietly".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake on the command line (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// env is what a subcommand gets: its arguments and the standard streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// Run runs the kin command line args (without the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return &exitError{code: exitUsage}
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c := commands[args[1]]; c != nil {
				return c.run(ctx, e, []string{"--help"})
			}
		}
		usage(stdout)
		return nil
	case "--version", "-v":
		name = "version"
	}
	c := commands[name]
	if c == nil {
		return usageErrorf("unknown command %q: run 'kin help' for the list", name)
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kin — the Node.js multi-process model for every language")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: kin <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'kin help <command>' for a command's flags.")
}

// newFlags returns a flag set for a subcommand whose usage line is use.
func newFlags(e *env, name, use, about string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kin "+name, pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: kin %s %s\n\n%s\n\nFlags:\n", name, use, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning pflag's errors into usage errors and
// --help into a quiet success.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return &exitError{code: 0}
		}
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// exitCode reports err on w and returns the process exit code for it.
func exitCode(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(w, "kin:", strings.TrimPrefix(ee.err.Error(), "kin: "))
		}
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "kin: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(w, "kin:", err)
	return exitFailure
}
