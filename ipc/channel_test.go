package ipc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
)

func TestMain(m *testing.M) {
	kintest.Register("echo", helperEcho)
	kintest.Main(m)
}

// helperEcho is a Go child: it echoes every message on its inherited channel
// until the parent closes it.
func helperEcho(args []string) {
	ch, err := ipc.FromEnv(ipc.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	for {
		m, err := ch.Recv(ctx)
		if err != nil {
			ch.Close()
			if err != io.EOF {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(4)
			}
			return
		}
		if m.Kind == ipc.Task {
			err = ch.Reply(ctx, m, m.Data)
		} else {
			err = ch.Send(ctx, m)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo send:", err)
			os.Exit(5)
		}
	}
}

var codecs = []ipc.Codec{ipc.JSON, ipc.Frame}

func pair(t *testing.T, cfg ipc.Config) (*ipc.Channel, *ipc.Channel) {
	t.Helper()
	a, b, err := ipc.Pair(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recvOK(t *testing.T, ctx context.Context, ch *ipc.Channel) ipc.Message {
	t.Helper()
	m, err := ch.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := []ipc.Message{
		{Data: []byte(`{"hello":"world","n":1}`)},
		{Data: []byte(`"café ☃ 😀"`)},
		{Data: []byte(`{"s":"line1\nline2"}`)},
		{Data: []byte(`null`)},
		{Kind: ipc.Task, ID: 1, Data: []byte(`[1,2,3]`)},
		{Kind: ipc.Result, ID: 1, Data: []byte(`{"ok":true}`)},
		{Kind: ipc.Error, ID: 2, Data: []byte(`{"message":"no"}`)},
		{Kind: ipc.Progress, ID: 3, Data: []byte(`0.5`)},
		{Kind: ipc.Ready},
		{Kind: ipc.Shutdown},
	}
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			a, b := pair(t, ipc.Config{Codec: codec})
			for _, m := range msgs {
				if err := a.Send(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range msgs {
				got := recvOK(t, ctx, b)
				if got.Kind != want.Kind || got.ID != want.ID || !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("got %v %d %q, want %v %d %q", got.Kind, got.ID, got.Data, want.Kind, want.ID, want.Data)
				}
			}
		})
	}
}

func TestManyMessagesInOrder(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			// A small receive buffer makes the reader stop and go many times.
			a, b := pair(t, ipc.Config{Codec: codec, RecvBuffer: 4096, SendBuffer: 8192})
			const n = 50000
			go func() {
				for i := 0; i < n; i++ {
					if err := a.Send(ctx, ipc.Message{Data: []byte(fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", i%200)))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for i := 0; i < n; i++ {
				m := recvOK(t, ctx, b)
				var v struct{ I int }
				if err := json.Unmarshal(m.Data, &v); err != nil || v.I != i {
					t.Fatalf("message %d: %q %v", i, m.Data, err)
				}
			}
		})
	}
}

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			a, b := pair(t, ipc.Config{Codec: codec})
			big := []byte(`"` + strings.Repeat("0123456789abcdef", 10<<20/16) + `"`) // 10 MiB
			go func() {
				for i := 0; i < 3; i++ {
					if err := a.Send(ctx, ipc.Message{Kind: ipc.Task, ID: uint64(i), Data: big}); err != nil {
						t.Error(err)
					}
				}
			}()
			for i := 0; i < 3; i++ {
				m := recvOK(t, ctx, b)
				if m.ID != uint64(i) || !bytes.Equal(m.Data, big) {
					t.Fatalf("message %d: id %d, %d bytes", i, m.ID, len(m.Data))
				}
			}
		})
	}
}

func TestSendTooLarge(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		a, _ := pair(t, ipc.Config{Codec: codec, MaxMessageSize: 1000})
		err := a.Send(context.Background(), ipc.Message{Data: []byte(`"` + strings.Repeat("x", 1000) + `"`)})
		var tl *ipc.TooLargeError
		if !errors.As(err, &tl) || tl.Max != 1000 {
			t.Fatalf("%s: Send of 1002 bytes with a 1000-byte limit: %v", codec, err)
		}
		// The channel still works.
		if err := a.Send(context.Background(), ipc.Message{Data: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// rawPeer returns a channel and the raw socket of its peer, to write bytes a
// well-behaved channel never would.
func rawPeer(t *testing.T, cfg ipc.Config) (*ipc.Channel, *os.File) {
	t.Helper()
	a, b, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ipc.FromFile(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); b.Close() })
	return ch, b
}

func TestReceiveTooLargeClosesChannel(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	t.Run("frame", func(t *testing.T) {
		ch, raw := rawPeer(t, ipc.Config{Codec: ipc.Frame, MaxMessageSize: 1 << 20})
		hdr := make([]byte, 16)
		hdr[0], hdr[1], hdr[2], hdr[3] = 0, 0, 0x60, 0x04 // 70 MiB
		raw.Write(hdr)
		_, err := ch.Recv(ctx)
		var tl *ipc.TooLargeError
		if !errors.As(err, &tl) || tl.Size != 70<<20 || !strings.Contains(err.Error(), "70 MiB > 1 MiB") {
			t.Fatalf("Recv after a 70 MiB header: %v", err)
		}
		assertPeerSeesEOF(t, raw)
	})
	t.Run("json", func(t *testing.T) {
		ch, raw := rawPeer(t, ipc.Config{MaxMessageSize: 1 << 20})
		go raw.Write([]byte(`{"ok":1}` + "\n" + `"` + strings.Repeat("x", 3<<20)))
		m := recvOK(t, ctx, ch)
		if string(m.Data) != `{"ok":1}` {
			t.Fatalf("first message: %q", m.Data)
		}
		_, err := ch.Recv(ctx)
		var tl *ipc.TooLargeError
		if !errors.As(err, &tl) {
			t.Fatalf("Recv of a 3 MiB line with a 1 MiB limit: %v", err)
		}
		assertPeerSeesEOF(t, raw)
	})
}

// assertPeerSeesEOF checks that the channel closed its socket.
func assertPeerSeesEOF(t *testing.T, raw *os.File) {
	t.Helper()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := raw.Read(buf)
		if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Fatalf("peer read: %v, want EOF", err)
		}
	}
}

func TestMalformedClosesOnlyThatChannel(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	tests := []struct {
		codec ipc.Codec
		bytes string
		want  string
	}{
		{ipc.JSON, "{\"ok\":1}\n{bad json}\n{\"ok\":2}\n", "invalid JSON"},
		{ipc.JSON, "{\"kin\":\"result\",\"id\":\"x\"}\n", "not a non-negative integer"},
		{ipc.Frame, "{\"kin\":\"ready\"}\n{\"x\":1}\n", "JSON codec"},
	}
	for _, tt := range tests {
		ch, raw := rawPeer(t, ipc.Config{Codec: tt.codec})
		other, otherPeer := pair(t, ipc.Config{Codec: tt.codec})
		raw.Write([]byte(tt.bytes))
		var err error
		for err == nil {
			_, err = ch.Recv(ctx)
		}
		if !errors.Is(err, ipc.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s %q: %v, want ErrMalformed with %q", tt.codec, tt.bytes, err, tt.want)
		}
		if ch.Err() == nil {
			t.Fatal("Err() is nil after a protocol error")
		}
		assertPeerSeesEOF(t, raw)
		// Another channel in the same process is unaffected.
		if err := other.Send(ctx, ipc.Message{Data: []byte(`"still here"`)}); err != nil {
			t.Fatal(err)
		}
		if m := recvOK(t, ctx, otherPeer); string(m.Data) != `"still here"` {
			t.Fatalf("other channel: %q", m.Data)
		}
	}
}

func TestRequestReply(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			parent, child := pair(t, ipc.Config{Codec: codec})
			// The child answers tasks: "fail" fails, anything else reports
			// progress twice, then echoes. Plain messages pass through Recv.
			go func() {
				for {
					m, err := child.Recv(ctx)
					if err != nil {
						return
					}
					switch {
					case m.Kind != ipc.Task:
						child.Send(ctx, m)
					case string(m.Data) == `"fail"`:
						child.Send(ctx, ipc.Message{Kind: ipc.Error, ID: m.ID, Data: ipc.EncodeError("it failed", "at child")})
					default:
						child.Send(ctx, ipc.Message{Kind: ipc.Progress, ID: m.ID, Data: []byte(`1`)})
						child.Send(ctx, ipc.Message{Kind: ipc.Progress, ID: m.ID, Data: []byte(`2`)})
						child.Reply(ctx, m, m.Data)
					}
				}
			}()
			var mu sync.Mutex
			var progress []string
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					data := []byte(fmt.Sprintf(`{"n":%d}`, i))
					r, err := parent.Request(ctx, ipc.Message{Data: data}, func(p ipc.Message) {
						mu.Lock()
						progress = append(progress, string(p.Data))
						mu.Unlock()
					})
					if err != nil || r.Kind != ipc.Result || !bytes.Equal(r.Data, data) {
						t.Errorf("request %d: %v %q %v", i, r.Kind, r.Data, err)
					}
				}(i)
			}
			// Plain messages interleave with replies and still reach Recv.
			parent.Send(ctx, ipc.Message{Data: []byte(`"plain"`)})
			wg.Wait()
			if m := recvOK(t, ctx, parent); string(m.Data) != `"plain"` {
				t.Fatalf("plain message: %q", m.Data)
			}
			if len(progress) != 100 {
				t.Fatalf("%d progress messages, want 100", len(progress))
			}
			_, err := parent.Request(ctx, ipc.Message{Data: []byte(`"fail"`)}, nil)
			var re *ipc.RemoteError
			if !errors.As(err, &re) || re.Message != "it failed" || re.Stack != "at child" {
				t.Fatalf("failing request: %v", err)
			}
		})
	}
}

func TestRequestCancel(t *testing.T) {
	t.Parallel()
	parent, child := pair(t, ipc.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := parent.Request(ctx, ipc.Message{Data: []byte(`1`)}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v", err)
	}
	// The late reply is dropped, not delivered to Recv.
	bg := ctxT(t)
	task := recvOK(t, bg, child)
	child.Reply(bg, task, []byte(`"late"`))
	child.Send(bg, ipc.Message{Data: []byte(`"next"`)})
	if m := recvOK(t, bg, parent); string(m.Data) != `"next"` {
		t.Fatalf("after a late reply, Recv got %v %q", m.Kind, m.Data)
	}
	// A request whose peer goes away fails at once.
	child.Close()
	if _, err := parent.Request(bg, ipc.Message{Data: []byte(`2`)}, nil); err == nil {
		t.Fatal("request to a closed peer succeeded")
	}
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			a, b := pair(t, ipc.Config{Codec: codec, SendBuffer: 64 << 10, RecvBuffer: 64 << 10})
			// Nobody reads b: Send must eventually block instead of queueing
			// without bound.
			msg := ipc.Message{Data: []byte(`"` + strings.Repeat("z", 1000) + `"`)}
			sent := 0
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := a.Send(ctx, msg)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				sent++
				if sent > 100000 {
					t.Fatal("Send never blocked: 100 MB queued for a peer that does not read")
				}
			}
			// Everything sent arrives once the peer reads.
			ctx := ctxT(t)
			for i := 0; i < sent; i++ {
				if m := recvOK(t, ctx, b); !bytes.Equal(m.Data, msg.Data) {
					t.Fatalf("message %d corrupted", i)
				}
			}
		})
	}
}

func TestFilePassing(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			a, b := pair(t, ipc.Config{Codec: codec})
			nfiles := 1
			if codec == ipc.Frame {
				nfiles = 3
			}
			var readers, writers []*os.File
			for i := 0; i < nfiles; i++ {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				readers, writers = append(readers, r), append(writers, w)
			}
			a.Send(ctx, ipc.Message{Data: []byte(`"before"`)})
			if err := a.Send(ctx, ipc.Message{Data: []byte(`{"pipes":true}`), Files: writers}); err != nil {
				t.Fatal(err)
			}
			a.Send(ctx, ipc.Message{Data: []byte(`"after"`)})
			for _, w := range writers {
				w.Close() // the peer has its own copies now
			}
			if m := recvOK(t, ctx, b); string(m.Data) != `"before"` || len(m.Files) != 0 {
				t.Fatalf("first: %q with %d files", m.Data, len(m.Files))
			}
			m := recvOK(t, ctx, b)
			if string(m.Data) != `{"pipes":true}` || len(m.Files) != nfiles {
				t.Fatalf("second: %q with %d files", m.Data, len(m.Files))
			}
			if codec == ipc.JSON && m.Handle != "net.Native" {
				t.Fatalf("handle type of a pipe: %q", m.Handle)
			}
			for i, f := range m.Files {
				fmt.Fprintf(f, "through pipe %d", i)
				f.Close()
				got, _ := io.ReadAll(readers[i])
				readers[i].Close()
				if string(got) != fmt.Sprintf("through pipe %d", i) {
					t.Fatalf("pipe %d carried %q", i, got)
				}
			}
			if m := recvOK(t, ctx, b); string(m.Data) != `"after"` {
				t.Fatalf("third: %q", m.Data)
			}
		})
	}
}

func TestNodeHandleWithoutFileIsNacked(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	ch, raw := rawPeer(t, ipc.Config{})
	raw.Write([]byte(`{"cmd":"NODE_HANDLE","type":"net.Server","msg":{"x":1}}` + "\n" + `{"y":2}` + "\n"))
	if m := recvOK(t, ctx, ch); string(m.Data) != `{"y":2}` {
		t.Fatalf("got %q: the handle without a descriptor must be dropped", m.Data)
	}
	line, _ := bufio.NewReader(raw).ReadString('\n')
	if line != `{"cmd":"NODE_HANDLE_NACK"}`+"\n" {
		t.Fatalf("reply %q, want a NACK", line)
	}
}

func TestEOFAfterDrain(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	a, b := pair(t, ipc.Config{})
	a.Send(ctx, ipc.Message{Data: []byte(`1`)})
	a.Send(ctx, ipc.Message{Data: []byte(`2`)})
	a.Close()
	a.Close() // idempotent
	if err := a.Send(ctx, ipc.Message{Data: []byte(`3`)}); !errors.Is(err, ipc.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	<-b.Done()
	for _, want := range []string{"1", "2"} {
		if m := recvOK(t, ctx, b); string(m.Data) != want {
			t.Fatalf("got %q want %q", m.Data, want)
		}
	}
	if _, err := b.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the peer closed: %v, want io.EOF", err)
	}
	if b.Err() != io.EOF {
		t.Fatalf("Err: %v", b.Err())
	}
}

func TestNoLeaks(t *testing.T) {
	// Not parallel: it counts this process's descriptors.
	before := fdsNow()
	for i := 0; i < 20; i++ {
		a, b, err := ipc.Pair(ipc.Config{Codec: codecs[i%2]})
		if err != nil {
			t.Fatal(err)
		}
		r, w, _ := os.Pipe()
		a.Send(context.Background(), ipc.Message{Data: []byte(`1`), Files: []*os.File{w}})
		w.Close()
		r.Close()
		a.Close()
		b.Close() // closes the unreceived descriptor too
	}
	kintest.WaitFor(t, 5*time.Second, "descriptors to be closed", func() bool { return fdsNow() <= before })
}

func fdsNow() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// startChild starts path with a channel on fd 3, as kin's proc package does.
func startChild(t *testing.T, codec ipc.Codec, path string, args []string, env []string) (*exec.Cmd, *ipc.Channel) {
	t.Helper()
	mine, theirs, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(env, "KIN_CHANNEL_FD=3", "KIN_CHANNEL_CODEC="+string(codec))
	if codec == ipc.JSON {
		cmd.Env = append(cmd.Env, "NODE_CHANNEL_FD=3", "NODE_CHANNEL_SERIALIZATION_MODE=json")
	}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	ch, err := ipc.FromFile(mine, ipc.Config{Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd, ch
}

func TestGoChild(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			path, args, env := kintest.Command("echo")
			cmd, ch := startChild(t, codec, path, args, env)
			big := []byte(`"` + strings.Repeat("é", 5<<20) + `"`)
			for _, d := range [][]byte{[]byte(`{"a":1}`), big} {
				r, err := ch.Request(ctx, ipc.Message{Data: d}, nil)
				if err != nil || !bytes.Equal(r.Data, d) || r.Kind != ipc.Result {
					t.Fatalf("echo of %d bytes: %v %d bytes %v", len(d), r.Kind, len(r.Data), err)
				}
			}
			ch.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child exit after channel close: %v", err)
			}
		})
	}
}

func nodeChild(t *testing.T, script string) (*exec.Cmd, *ipc.Channel) {
	t.Helper()
	node := kintest.Node(t)
	return startChild(t, ipc.JSON, node, []string{filepath.Join("testdata", script)}, os.Environ())
}

func TestNodeChildEcho(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	_, ch := nodeChild(t, "echo.js")
	msgs := []string{
		`{"hello":"world","n":1}`,
		`{"s":"café ☃ 😀"}`,
		`{"s":"line1\nline2 ü"}`,
		`"str"`, `42`, `null`, `[1,2,3]`,
		`{"kin":"task","id":12,"data":{"x":1}}`,
		`{"big":"` + strings.Repeat("0123456789", 1<<20) + `"}`, // 10 MiB
	}
	for _, s := range msgs {
		if err := ch.Send(ctx, ipc.Message{Data: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		m := recvOK(t, ctx, ch)
		if m.Kind == ipc.Task {
			// The Node child echoed our task envelope verbatim.
			if m.ID != 12 || string(m.Data) != `{"x":1}` {
				t.Fatalf("task echo: %d %q", m.ID, m.Data)
			}
			continue
		}
		var got, exp any
		json.Unmarshal(m.Data, &got)
		json.Unmarshal([]byte(want), &exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("node echoed %.80q, want %.80q", m.Data, want)
		}
	}
	// A Go string with a newline arrives in Node as one message and back.
	s, _ := json.Marshal(map[string]string{"s": "a\nb\r\nc\u2028d"})
	ch.Send(ctx, ipc.Message{Data: s})
	var back map[string]string
	json.Unmarshal(recvOK(t, ctx, ch).Data, &back)
	if back["s"] != "a\nb\r\nc\u2028d" {
		t.Fatalf("newline round trip: %q", back["s"])
	}
}

func TestNodeChildBurst(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	_, ch := nodeChild(t, "burst.js")
	const n = 20000
	ch.Send(ctx, ipc.Message{Data: []byte(fmt.Sprintf(`{"op":"burst","n":%d,"size":100}`, n))})
	for i := 0; i < n; i++ {
		var v struct{ I int }
		if err := json.Unmarshal(recvOK(t, ctx, ch).Data, &v); err != nil || v.I != i {
			t.Fatalf("message %d: %v %v", i, v.I, err)
		}
	}
	if m := recvOK(t, ctx, ch); string(m.Data) != `{"op":"done"}` {
		t.Fatalf("last: %q", m.Data)
	}
}

func TestNodeChildHandles(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	_, ch := nodeChild(t, "echo.js")

	// Go → Node: a listening socket; Node serves connections on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, _ := ln.(*net.TCPListener).File()
	ln.Close()
	err = ch.Send(ctx, ipc.Message{Data: []byte(`{"op":"serve"}`), Files: []*os.File{lf}})
	lf.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := recvOK(t, ctx, ch)
	var serving struct {
		Op   string
		Port int
	}
	json.Unmarshal(m.Data, &serving)
	if serving.Op != "serving" || serving.Port == 0 {
		t.Fatalf("node answered %q", m.Data)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", serving.Port))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "hi from node ") {
		t.Fatalf("node served %q", line)
	}

	// Node → Go: Node's own server arrives as a listening socket, and the
	// message Node queued behind it arrives too, which needs our ACK.
	ch.Send(ctx, ipc.Message{Data: []byte(`{"op":"listen"}`)})
	m = recvOK(t, ctx, ch)
	if len(m.Files) != 1 || m.Handle != "net.Server" {
		t.Fatalf("node sent %q with %d files, handle %q", m.Data, len(m.Files), m.Handle)
	}
	nl, err := net.FileListener(m.Files[0])
	m.Files[0].Close()
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if m := recvOK(t, ctx, ch); string(m.Data) != `{"op":"after-handle"}` {
		t.Fatalf("after the handle: %q", m.Data)
	}
	// Both processes now accept on the same socket; Node's answer proves it
	// is the same one.
	var port struct{ Port int }
	json.Unmarshal(m.Data, &port)
	if nl.Addr().(*net.TCPAddr).Port == 0 {
		t.Fatal("received listener has no port")
	}
}

func TestNodeParentGoChild(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	for _, mode := range []string{"fork", "spawn"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			exe, _, env := kintest.Command("echo")
			cmd := exec.Command(node, filepath.Join("testdata", "parent.js"), exe, mode)
			cmd.Env = env
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node parent: %v\n%s", err, out)
			}
			var res struct {
				OK bool
				N  int
			}
			if json.Unmarshal(out, &res) != nil || !res.OK || res.N != 8 {
				t.Fatalf("node parent reported %s", out)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	// Not parallel: it changes the environment.
	t.Setenv("KIN_CHANNEL_FD", "")
	t.Setenv("NODE_CHANNEL_FD", "")
	if _, err := ipc.FromEnv(ipc.Config{}); !errors.Is(err, ipc.ErrNoChannel) {
		t.Fatalf("no channel: %v", err)
	}
	t.Setenv("NODE_CHANNEL_FD", "3")
	t.Setenv("NODE_CHANNEL_SERIALIZATION_MODE", "advanced")
	if _, err := ipc.FromEnv(ipc.Config{}); err == nil || !strings.Contains(err.Error(), "serialization: 'json'") {
		t.Fatalf("advanced mode: %v", err)
	}
	t.Setenv("NODE_CHANNEL_FD", "")
	t.Setenv("NODE_CHANNEL_SERIALIZATION_MODE", "")
	t.Setenv("KIN_CHANNEL_FD", "987")
	if _, err := ipc.FromEnv(ipc.Config{}); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Fatalf("closed fd: %v", err)
	}
	// KIN_ variables inherited through a Node process next to a different
	// NODE_CHANNEL_FD are stale: Node's wins.
	a, b, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fd, _ := syscall.Dup(int(a.Fd())) // FromEnv takes ownership of the number
	a.Close()
	t.Setenv("KIN_CHANNEL_FD", "987")
	t.Setenv("KIN_CHANNEL_CODEC", "frame")
	t.Setenv("NODE_CHANNEL_FD", fmt.Sprint(fd))
	ch, err := ipc.FromEnv(ipc.Config{})
	if err != nil || ch.Codec() != ipc.JSON {
		t.Fatalf("stale KIN_ variables: %v", err)
	}
	ch.Close()
	t.Setenv("KIN_CHANNEL_FD", "x")
	if _, err := ipc.FromEnv(ipc.Config{}); err == nil || !strings.Contains(err.Error(), "not a file descriptor") {
		t.Fatalf("bad fd: %v", err)
	}
}
