package ipc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Vectors from NODE-IPC.md §6: the exact bytes Node writes.
func TestDecodeJSONLineNodeVectors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Message
		file bool
		ack  bool
		skip bool
	}{
		{name: "V1 object", line: `{"hello":"world","n":1}`, want: Message{Data: []byte(`{"hello":"world","n":1}`)}},
		{name: "V2 string", line: `"str"`, want: Message{Data: []byte(`"str"`)}},
		{name: "V3 number", line: `42`, want: Message{Data: []byte(`42`)}},
		{name: "V4 unicode", line: "{\"s\":\"café ☃ 😀\"}", want: Message{Data: []byte("{\"s\":\"café ☃ 😀\"}")}},
		{name: "V5 escaped newline", line: `{"s":"line1\nline2"}`, want: Message{Data: []byte(`{"s":"line1\nline2"}`)}},
		{name: "V6 escapes", line: `{"s":"\t\"\\\u0001"}`, want: Message{Data: []byte(`{"s":"\t\"\\\u0001"}`)}},
		{name: "null", line: `null`, want: Message{Data: []byte(`null`)}},
		{name: "array", line: `[1,2,3]`, want: Message{Data: []byte(`[1,2,3]`)}},
		{name: "CRLF and spaces", line: "  {\"sp\":2}  \r", want: Message{Data: []byte(`{"sp":2}`)}},
		{name: "blank", line: "  \r", skip: true},
		{name: "V9 ack", line: `{"cmd":"NODE_HANDLE_ACK"}`, ack: true},
		{name: "nack", line: `{"cmd":"NODE_HANDLE_NACK"}`, ack: true},
		{name: "V10 handle", line: `{"cmd":"NODE_HANDLE","type":"net.Server","msg":{"hello":"world"}}`,
			want: Message{Data: []byte(`{"hello":"world"}`), Handle: "net.Server"}, file: true},
		{name: "retransmission double wrap", line: `{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"a":1},"key":"k"}}`,
			want: Message{Data: []byte(`{"a":1}`), Handle: "net.Native"}, file: true},
		{name: "other internal", line: `{"cmd":"NODE_FOO","x":1}`, want: Message{Data: []byte(`{"cmd":"NODE_FOO","x":1}`)}},
		{name: "task", line: `{"kin":"task","id":7,"data":{"x":[1,"}"]}}`, want: Message{Kind: Task, ID: 7, Data: []byte(`{"x":[1,"}"]}`)}},
		{name: "result keys reordered", line: `{ "data" : "a\"b" , "id" : 9 , "kin" : "result" }`, want: Message{Kind: Result, ID: 9, Data: []byte(`"a\"b"`)}},
		{name: "result without data", line: `{"kin":"result","id":3}`, want: Message{Kind: Result, ID: 3}},
		{name: "result null data", line: `{"kin":"result","id":3,"data":null}`, want: Message{Kind: Result, ID: 3}},
		{name: "error", line: `{"kin":"error","id":4,"error":{"message":"boom","stack":"at x"}}`, want: Message{Kind: Error, ID: 4, Data: []byte(`{"message":"boom","stack":"at x"}`)}},
		{name: "ready", line: `{"kin":"ready"}`, want: Message{Kind: Ready}},
		{name: "float id", line: `{"kin":"progress","id":5.0,"data":1}`, want: Message{Kind: Progress, ID: 5, Data: []byte(`1`)}},
		{name: "unknown kin is plain", line: `{"kin":"weather","id":1}`, want: Message{Data: []byte(`{"kin":"weather","id":1}`)}},
		{name: "kin in a nested object is plain", line: `{"a":{"kin":"task","id":1}}`, want: Message{Data: []byte(`{"a":{"kin":"task","id":1}}`)}},
		{name: "kin envelope inside a handle", line: `{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"kin":"task","id":2,"data":[]}}`,
			want: Message{Kind: Task, ID: 2, Data: []byte(`[]`), Handle: "net.Native"}, file: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, skip, err := decodeJSONLine([]byte(tt.line))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if skip != tt.skip || l.wantsFile != tt.file || l.ack != tt.ack {
				t.Fatalf("skip=%v file=%v ack=%v, want %v %v %v", skip, l.wantsFile, l.ack, tt.skip, tt.file, tt.ack)
			}
			if tt.skip || tt.ack {
				return
			}
			if l.msg.Kind != tt.want.Kind || l.msg.ID != tt.want.ID || !bytes.Equal(l.msg.Data, tt.want.Data) || l.msg.Handle != tt.want.Handle {
				t.Fatalf("got kind=%v id=%d data=%q handle=%q, want kind=%v id=%d data=%q handle=%q",
					l.msg.Kind, l.msg.ID, l.msg.Data, l.msg.Handle, tt.want.Kind, tt.want.ID, tt.want.Data, tt.want.Handle)
			}
		})
	}
}

func TestDecodeJSONLineErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{bad json}`, "invalid JSON"},
		{`{"ok":1`, "invalid JSON"},
		{`{"kin":"task","data":1}`, "without an id"},
		{`{"kin":"result","id":-1}`, "not a non-negative integer"},
		{`{"kin":"result","id":"7"}`, "not a non-negative integer"},
		{`{"cmd":"NODE_HANDLE","type":"net.Server"}`, "NODE_HANDLE without msg"},
	}
	for _, tt := range tests {
		_, _, err := decodeJSONLine([]byte(tt.line))
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decode(%s) = %v, want ErrMalformed containing %q", tt.line, err, tt.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		m    Message
		want string
	}{
		{Message{Data: []byte(`{"hello":"world","n":1}`)}, `{"hello":"world","n":1}` + "\n"},
		{Message{Data: []byte("{\n  \"a\": [1,\n 2]\n}")}, `{"a":[1,2]}` + "\n"},
		{Message{Kind: Task, ID: 7, Data: []byte(`{"x":1}`)}, `{"kin":"task","id":7,"data":{"x":1}}` + "\n"},
		{Message{Kind: Result, ID: 1}, `{"kin":"result","id":1}` + "\n"},
		{Message{Kind: Error, ID: 2, Data: []byte(`{"message":"m"}`)}, `{"kin":"error","id":2,"error":{"message":"m"}}` + "\n"},
		{Message{Kind: Ready}, `{"kin":"ready"}` + "\n"},
		{Message{Kind: Shutdown}, `{"kin":"shutdown"}` + "\n"},
	}
	for _, tt := range tests {
		got, err := appendJSON(nil, &tt.m)
		if err != nil || string(got) != tt.want {
			t.Errorf("appendJSON(%v %q) = %q, %v; want %q", tt.m.Kind, tt.m.Data, got, err, tt.want)
		}
		// What we write decodes to what we wrote.
		l, _, err := decodeJSONLine(bytes.TrimSuffix(got, []byte("\n")))
		if err != nil || l.msg.Kind != tt.m.Kind || l.msg.ID != tt.m.ID {
			t.Errorf("round trip of %q: %+v, %v", got, l.msg, err)
		}
	}
	for _, bad := range []Message{{}, {Data: []byte(`{`)}, {Kind: Task, Data: []byte(`nope`)}} {
		if _, err := appendJSON(nil, &bad); err == nil {
			t.Errorf("appendJSON(%q) succeeded, want an error", bad.Data)
		}
	}
}

func TestFrameHeader(t *testing.T) {
	m := Message{Kind: Error, ID: 1<<40 + 3, Data: []byte("payload")}
	b := appendFrame(nil, &m)
	h, err := parseFrameHeader(b, 100)
	if err != nil || h.kind != Error || h.id != m.ID || h.size != 7 || h.total != 23 || h.nfds != 0 {
		t.Fatalf("parseFrameHeader = %+v, %v", h, err)
	}
	if _, err := parseFrameHeader(b, 6); !errors.As(err, new(*TooLargeError)) {
		t.Fatalf("size limit not enforced: %v", err)
	}
	json := []byte(`{"kin":"ready"}` + "\n")
	if _, err := parseFrameHeader(json, 1<<30); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "JSON codec") {
		t.Fatalf("JSON bytes as a frame header: %v", err)
	}
}
