package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
)

// directTransport is the client's http.RoundTripper: one connection to
// the daemon's socket per request, written and read in the caller's
// goroutine. net/http's Transport pools connections behind a dialing
// goroutine and a reader and a writer per connection; for a CLI that
// makes one or two calls and exits, that costs more than the call (each
// new goroutine and thread is start-up time, see BENCHMARKS.md), and a
// Unix socket connects in microseconds.
type directTransport struct {
	sock string
}

func (t directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", t.sock)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	// Cancelling the request closes the connection, which ends a blocked
	// write or read (a followed log stream, a long wait).
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	req.Close = true // "Connection: close": the daemon ends the stream after its answer
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &connBody{ReadCloser: resp.Body, conn: conn, stop: stop}
	return resp, nil
}

// connBody closes the connection with the response's body.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
	once sync.Once
}

func (b *connBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.stop()
		b.conn.Close()
	})
	return err
}
