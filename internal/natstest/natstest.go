// Package natstest starts embedded NATS servers (package queue's) for
// tests: one per test, in the test's temporary directory, shut down when the
// test ends, with a client connected in-process.
//
//	srv, c := natstest.Start(t, queue.ServerConfig{})
//	c.Add(ctx, "q", queue.JobSpec{…})
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/kinproc/kin/queue"
)

// Server starts an embedded server with cfg (Dir defaults to a new
// temporary directory), shut down when the test ends.
func Server(t testing.TB, cfg queue.ServerConfig) *queue.Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := queue.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects a client to s in-process, closed when the test ends.
func Connect(t testing.TB, s *queue.Server) *queue.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := queue.Connect(ctx, queue.ConnectConfig{Server: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Start is Server and Connect.
func Start(t testing.TB, cfg queue.ServerConfig) (*queue.Server, *queue.Client) {
	t.Helper()
	s := Server(t, cfg)
	return s, Connect(t, s)
}
