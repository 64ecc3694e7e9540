// Command kin is the Node.js multi-process model for every language: worker
// pools of warm processes, process trees, IPC benchmarks — and, as the
// project grows, a process manager and a job queue. Run "kin help".
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/kinproc/kin/worker"
)

// startProfile writes a CPU profile to $KIN_CPUPROFILE when it is set: a
// tool for performance work on kin itself.
func startProfile() func() {
	path := os.Getenv("KIN_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	pprof.StartCPUProfile(f)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func main() {
	worker.Main() // kin re-executes itself for its built-in workers
	benchChildMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
