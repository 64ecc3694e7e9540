// Command kin is the Node.js multi-process model for every language: worker
// pools of warm processes, process trees, IPC benchmarks — and, as the
// project grows, a process manager and a job queue. Run "kin help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kinproc/kin/worker"
)

func main() {
	worker.Main() // kin re-executes itself for its built-in workers
	benchChildMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
