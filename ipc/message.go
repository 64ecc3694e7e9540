package ipc

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Codec names the encoding of messages on a channel. The zero value means JSON.
type Codec string

// The codecs a Channel speaks. The names are the values of KIN_CHANNEL_CODEC.
const (
	// JSON is newline-delimited JSON, the wire format of Node's
	// child_process channel ("json" serialization).
	JSON Codec = "json"
	// Frame is kin's length-prefixed binary framing (see docs/protocol.md).
	Frame Codec = "frame"
)

// ParseCodec returns the codec called name; the empty string is JSON.
func ParseCodec(name string) (Codec, error) {
	switch Codec(name) {
	case "", JSON:
		return JSON, nil
	case Frame:
		return Frame, nil
	}
	return "", fmt.Errorf("ipc: unknown codec %q (want %q or %q)", name, JSON, Frame)
}

func (c Codec) orDefault() Codec {
	if c == "" {
		return JSON
	}
	return c
}

// Kind says what a message is. The zero value, Plain, is an application
// message; the others are the task protocol of docs/protocol.md. In the JSON
// codec they are objects whose "kin" member holds the kind's name.
type Kind uint8

// The message kinds. Their numeric values are part of the frame codec.
const (
	Plain    Kind = iota // an application message: any JSON value in the JSON codec, any bytes in the frame codec
	Task                 // a request: {"kin":"task","id":N,"data":…}
	Result               // the successful reply to the task with the same id
	Error                // the failed reply: {"kin":"error","id":N,"error":{"message":…,"stack":…}}
	Progress             // a progress report for a running task; the task goes on
	Ready                // the child is ready for work: {"kin":"ready"}
	Shutdown             // the parent asks the child to finish and exit: {"kin":"shutdown"}
	numKinds
)

var kindNames = [numKinds]string{"message", "task", "result", "error", "progress", "ready", "shutdown"}

// String returns the kind's name as it appears in the JSON codec's "kin" member.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// hasID reports whether messages of this kind carry a correlation id.
func (k Kind) hasID() bool { return k == Task || k == Result || k == Error || k == Progress }

// isReply reports whether the kind answers (or reports on) a Task.
func (k Kind) isReply() bool { return k == Result || k == Error || k == Progress }

// kindByName maps the JSON codec's "kin" values back to kinds. Only the task
// protocol's kinds are recognised; any other object is a Plain message.
func kindByName(name []byte) (Kind, bool) {
	for k := Task; k < numKinds; k++ {
		if string(name) == kindNames[k] {
			return k, true
		}
	}
	return Plain, false
}

// Message is one message on a channel. The zero value is an empty Plain
// message, which the JSON codec refuses to send (Node cannot send one either).
type Message struct {
	// Kind is the message's kind; zero is Plain.
	Kind Kind
	// ID correlates a Task with its Result, Error and Progress messages.
	// Zero for the other kinds.
	ID uint64
	// Data is the payload. In the JSON codec it is a JSON document: the whole
	// message for Plain, the "data" member for Task, Result, Progress and
	// Ready, the "error" member for Error (nil when absent). In the frame
	// codec it is any bytes. A received Message's Data is its own: it is not
	// reused by the channel.
	Data []byte
	// Files are open files passed with the message (SCM_RIGHTS). A receiver
	// owns them and must close them. The JSON codec carries at most one, in
	// Node's NODE_HANDLE envelope.
	Files []*os.File
	// Handle is the JSON codec's NODE_HANDLE type ("net.Server", "net.Socket",
	// "dgram.Socket", "net.Native"…) of Files[0]. Empty when sending means
	// kin infers it from the socket; it is set on received handles.
	Handle string
}

// IsReady reports whether m announces readiness: a Ready message, or PM2's
// process.send('ready'), which is the JSON string "ready".
func (m Message) IsReady() bool {
	return m.Kind == Ready || (m.Kind == Plain && string(m.Data) == `"ready"`)
}

// closeFiles closes every file of m; used when a message cannot be delivered.
func (m Message) closeFiles() {
	for _, f := range m.Files {
		if f != nil {
			f.Close()
		}
	}
}

// RemoteError is the error a peer returned for a task: the decoded "error"
// member of an Error message ({"message":…,"stack":…}).
type RemoteError struct {
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
	// Raw is the error member exactly as received.
	Raw json.RawMessage `json:"-"`
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "task failed: " + string(e.Raw)
	}
	return e.Message
}

// DecodeError turns an Error message's payload into a *RemoteError. A payload
// that is not an object with a message is kept verbatim in Raw and Message.
func DecodeError(data []byte) *RemoteError {
	e := &RemoteError{Raw: append(json.RawMessage(nil), data...)}
	if err := json.Unmarshal(data, e); err != nil || e.Message == "" {
		var s string
		if json.Unmarshal(data, &s) == nil {
			e.Message = s
		} else if e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
	}
	return e
}

// EncodeError returns the Error payload for err: {"message":…} plus "stack"
// when non-empty.
func EncodeError(message, stack string) []byte {
	b, _ := json.Marshal(RemoteError{Message: message, Stack: stack})
	return b
}
