package ipc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzJSONLine checks that any line either fails to decode with ErrMalformed
// or decodes to a message that encodes and decodes back to itself.
func FuzzJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"hello":"world","n":1}`, `"str"`, `42`, `null`, `[1,2,3]`, ` {"sp":2} ` + "\r",
		`{"kin":"task","id":7,"data":{"x":[1,"}\""]}}`, `{"kin":"error","id":1,"error":{"message":"m"}}`,
		`{"kin":"ready"}`, `{"cmd":"NODE_HANDLE","type":"net.Server","msg":{"a":1}}`,
		`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"cmd":"NODE_HANDLE","msg":{}}}`,
		`{"cmd":"NODE_HANDLE_ACK"}`, `{bad}`, `{"kin":"result","id":1e400}`, `{"a":"\\\"","kin":"progress","id":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			return // the reader splits lines before decoding
		}
		l, skip, err := decodeJSONLine(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if skip || l.ack || (l.msg.Kind == Plain && len(l.msg.Data) == 0) {
			return
		}
		enc, err := appendJSON(nil, &l.msg)
		if err != nil {
			t.Fatalf("re-encoding %q (%v %q): %v", line, l.msg.Kind, l.msg.Data, err)
		}
		l2, _, err := decodeJSONLine(bytes.TrimSuffix(enc, []byte("\n")))
		if err != nil || l2.msg.Kind != l.msg.Kind || l2.msg.ID != l.msg.ID {
			t.Fatalf("round trip of %q via %q: %+v %v", line, enc, l2.msg, err)
		}
		var c1, c2 bytes.Buffer
		if len(l.msg.Data) > 0 {
			compactOrSelf(&c1, l.msg.Data)
			compactOrSelf(&c2, l2.msg.Data)
			if !bytes.Equal(c1.Bytes(), c2.Bytes()) {
				t.Fatalf("data changed: %q -> %q", l.msg.Data, l2.msg.Data)
			}
		}
	})
}

func compactOrSelf(b *bytes.Buffer, v []byte) {
	if err := compactJSON(b, v); err != nil {
		b.Write(v)
	}
}

// FuzzChannel writes arbitrary bytes into a channel's socket and reads
// everything back: the channel must deliver messages or close with a clear
// error, never panic, hang, or allocate beyond its limit.
func FuzzChannel(f *testing.F) {
	m := Message{Kind: Task, ID: 9, Data: []byte(`{"x":1}`)}
	frame := appendFrame(nil, &m)
	f.Add(true, append(append([]byte{}, frame...), frame[:20]...))
	f.Add(true, []byte{0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(true, []byte{4, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd'})
	f.Add(true, []byte{0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(false, []byte("{\"kin\":\"task\",\"id\":1,\"data\":2}\n\n{\"a\":1}\r\n[1,2"))
	f.Add(false, []byte("{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Server\",\"msg\":{}}\n"))
	f.Add(false, []byte("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"))
	f.Fuzz(func(t *testing.T, frameCodec bool, input []byte) {
		cfg := Config{Codec: JSON, MaxMessageSize: 64}
		if frameCodec {
			cfg.Codec = Frame
		}
		a, b, err := Socketpair()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := FromFile(a, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		go func() {
			b.Write(input)
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			m, err := ch.Recv(ctx)
			if err != nil {
				var tl *TooLargeError
				switch {
				case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrMalformed), errors.As(err, &tl):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(m.Data) > cfg.MaxMessageSize {
				t.Fatalf("delivered %d bytes over the %d limit", len(m.Data), cfg.MaxMessageSize)
			}
			for _, f := range m.Files {
				f.Close()
			}
		}
	})
}
