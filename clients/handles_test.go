package clients_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
)

// TestPythonNodeHandle talks raw bytes to the Python helper, as a Node parent
// sending handles would: every NODE_HANDLE envelope gets exactly one ACK (or
// a NACK when no descriptor came, and the message is dropped), the message
// inside is delivered, and the unused descriptor is closed.
//
// It starts the worker with os/exec rather than proc, because proc removes
// the channel variables this test sets itself, and reads the socket
// directly, because ipc.Channel consumes ACKs and NACKs.
func TestPythonNodeHandle(t *testing.T) {
	t.Parallel()
	python := kintest.Python(t)
	mine, theirs, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "py_worker.py"))
	// A Node parent sets only the NODE_ pair.
	cmd.Env = append(withoutChannelVars(os.Environ()), "NODE_CHANNEL_FD=3", "NODE_CHANNEL_SERIALIZATION_MODE=json")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	fc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn := fc.(*net.UnixConn)
	t.Cleanup(func() {
		conn.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	lines := bufio.NewReader(conn)
	expect := func(want string) {
		t.Helper()
		got, err := lines.ReadString('\n')
		if err != nil || got != want+"\n" {
			t.Fatalf("worker wrote %q (%v), want %q", got, err, want+"\n")
		}
	}
	send := func(line string, f *os.File) {
		t.Helper()
		var oob []byte
		if f != nil {
			oob = syscall.UnixRights(int(f.Fd()))
		}
		if _, _, err := conn.WriteMsgUnix([]byte(line+"\n"), oob, nil); err != nil {
			t.Fatal(err)
		}
	}

	expect(`{"kin":"ready"}`)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	send(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"kin":"task","id":1,"data":{"op":"echo","v":"é"}}}`, r)
	r.Close()
	expect(`{"cmd":"NODE_HANDLE_ACK"}`)
	expect(`{"kin":"result","id":1,"data":"é"}`)
	// The worker closed the descriptor it had no use for: the pipe has no
	// reader left.
	kintest.WaitFor(t, 10*time.Second, "the worker to close the passed descriptor", func() bool {
		_, err := w.Write([]byte("x"))
		return errors.Is(err, syscall.EPIPE)
	})

	// No descriptor: NACK, and the message is dropped.
	send(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"kin":"task","id":2,"data":{"op":"echo","v":2}}}`, nil)
	expect(`{"cmd":"NODE_HANDLE_NACK"}`)
	send(`{"kin":"task","id":3,"data":{"op":"echo","v":3}}`, nil)
	expect(`{"kin":"result","id":3,"data":3}`)

	// Node's retransmission nests the envelope: still one ACK.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	send(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"kin":"task","id":4,"data":{"op":"echo","v":4}}}}`, r2)
	r2.Close()
	expect(`{"cmd":"NODE_HANDLE_ACK"}`)
	expect(`{"kin":"result","id":4,"data":4}`)

	// Shutdown: the worker closes the channel and exits 0.
	send(`{"kin":"shutdown"}`, nil)
	if line, err := lines.ReadString('\n'); line != "" || err == nil {
		t.Fatalf("after shutdown the worker wrote %q (%v), want EOF", line, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
}

func withoutChannelVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KIN_CHANNEL_") && !strings.HasPrefix(kv, "NODE_CHANNEL_") {
			out = append(out, kv)
		}
	}
	return out
}
