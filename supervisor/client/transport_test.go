package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// TestDirectTransport: one connection per request, closed with the body;
// a cancelled request ends at once and closes its connection.
func TestDirectTransport(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "t.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var opened, closed atomic.Int32
	hung := make(chan struct{})
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hang" {
				<-r.Context().Done() // ends when the client's connection closes
				close(hung)
				return
			}
			io.WriteString(w, "answer to "+r.URL.Path)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				opened.Add(1)
			case http.StateClosed:
				closed.Add(1)
			}
		},
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	c := &http.Client{Transport: directTransport{sock: sock}}
	for i := range 3 {
		resp, err := c.Get("http://kin/ok")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "answer to /ok" {
			t.Fatalf("request %d: %q %v", i, b, err)
		}
	}
	kintest.WaitFor(t, 5*time.Second, "3 connections opened and closed", func() bool {
		return opened.Load() == 3 && closed.Load() == 3
	})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://kin/hang", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(req)
		errc <- err
	}()
	kintest.WaitFor(t, 5*time.Second, "the hanging request connected", func() bool { return opened.Load() == 4 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled request: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled request did not return")
	}
	select {
	case <-hung:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the cancelled request's connection close")
	}

	// Nothing listens: the dial error reaches the caller (Client maps it
	// to ErrNoDaemon).
	_, err = (&http.Client{Transport: directTransport{sock: sock + ".none"}}).Get("http://kin/ok")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("no listener: %v, want a dial error", err)
	}
}
