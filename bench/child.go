package bench

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
	"path/filepath"
	"runtime/pprof"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/worker"
)

// EnvChild names the benchmark child a re-executed program runs (ChildMain).
const EnvChild = "KIN_BENCH_CHILD"

// EnvChildProfile, when set to a directory, makes every Go benchmark child
// write a CPU profile there, named after its mode and pid: the other half
// of a `go test -cpuprofile` of the parent.
const EnvChildProfile = "KIN_BENCH_CHILD_PROFILE"

// The child modes.
const (
	childRaw      = "raw"       // raw frames on fd 3: echo and count
	childRawReady = "raw-ready" // writes one raw frame on fd 3 and exits
	childKin      = "kin"       // ipc.FromEnv, any codec: echo and count
	childWorker   = "worker"    // worker.Serve, echoing tasks
	// childRestartApp (pm.go): the crashing app of PM's restart figure
)

// ChildMain runs the benchmark child named by $KIN_BENCH_CHILD and exits the
// process; when the variable is unset it returns at once. The Go children of
// IPC and Spawn are copies of the running program, so a program that calls
// them must call ChildMain first thing in main (or in TestMain).
func ChildMain() {
	mode := os.Getenv(EnvChild)
	if mode == "" {
		return
	}
	os.Unsetenv(EnvChild)
	stopProfile := startProfile(mode)
	var err error
	switch mode {
	case childRaw:
		err = rawChild()
	case childRawReady:
		err = rawReadyChild()
	case childKin:
		err = kinChild()
	case childRestartApp:
		err = restartAppChild()
	case childWorker:
		err = worker.Serve(func(ctx context.Context, t *worker.Task) ([]byte, error) {
			return t.Data, nil
		})
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	stopProfile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kin bench child %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startProfile starts the CPU profile asked for by $KIN_BENCH_CHILD_PROFILE
// and returns what stops it.
func startProfile(mode string) (stop func()) {
	dir := os.Getenv(EnvChildProfile)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", mode, os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kin bench child %s: profile: %v\n", mode, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// The benchmark protocol of the kin and Node children. A setup message
// {"t":"n","n":N} makes the child count the next N messages instead of
// echoing them, and answer {"t":"done","n":N} after the last.
var (
	setupPrefix = []byte(`{"t":"n"`)
	donePrefix  = []byte(`{"t":"done"`)
)

type setupMsg struct {
	T string `json:"t"`
	N int    `json:"n"`
}

func setupMessage(n int) []byte {
	b, _ := json.Marshal(setupMsg{T: "n", N: n})
	return b
}

func doneMessage(n int) []byte {
	b, _ := json.Marshal(setupMsg{T: "done", N: n})
	return b
}

// kinChild serves the benchmark protocol on the channel from its parent: kin
// (either codec) or Node's child_process.fork.
func kinChild() error {
	// Borrow: each message is handled (echoed or counted) before the next
	// Recv, so it need not be copied out of the channel's buffer.
	ch, err := ipc.FromEnv(ipc.Config{Borrow: true})
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx := context.Background()
	left, count := 0, 0
	for {
		m, err := ch.Recv(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case left > 0:
			left--
			if left == 0 {
				err = ch.Send(ctx, ipc.Message{Data: doneMessage(count)})
			}
		case bytes.HasPrefix(m.Data, setupPrefix):
			var s setupMsg
			if err := json.Unmarshal(m.Data, &s); err != nil {
				return fmt.Errorf("setup message %q: %w", m.Data, err)
			}
			left, count = s.N, s.N
			if left == 0 {
				err = ch.Send(ctx, ipc.Message{Data: doneMessage(0)})
			}
		default:
			err = ch.Send(ctx, ipc.Message{Data: m.Data})
		}
		if err != nil {
			return err
		}
	}
}

// Raw frames: [u32 payload length][u8 type][u32 n][payload], little-endian.
const rawHeaderSize = 9

// Raw frame types.
const (
	rawPing  = 1 // echoed back unchanged
	rawData  = 2 // counted
	rawCount = 3 // n: how many rawData frames follow before rawDone is due
	rawDone  = 4 // the child has counted them all; n is the count
)

func putRawHeader(b []byte, size int, typ byte, n int) {
	b[0], b[1], b[2], b[3] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
	b[4] = typ
	b[5], b[6], b[7], b[8] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
}

func parseRawHeader(b []byte) (size int, typ byte, n int) {
	size = int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
	n = int(b[5]) | int(b[6])<<8 | int(b[7])<<16 | int(b[8])<<24
	return size, b[4], n
}

// rawConn returns the socket inherited as fd 3.
func rawConn() (net.Conn, error) {
	f := os.NewFile(3, "raw-channel")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("fd 3: %w", err)
	}
	return conn, nil
}

// rawChild is the raw baseline's child: a bufio.Reader and a bufio.Writer
// on the socket, echoing ping frames and counting data frames.
func rawChild() error {
	conn, err := rawConn()
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 64<<10)
	var hdr [rawHeaderSize]byte
	var buf []byte
	left, count := 0, 0
	done := func() error {
		putRawHeader(hdr[:], 0, rawDone, count)
		w.Write(hdr[:])
		return w.Flush()
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		size, typ, n := parseRawHeader(hdr[:])
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		if _, err := io.ReadFull(r, buf[:size]); err != nil {
			return err
		}
		switch typ {
		case rawPing:
			w.Write(hdr[:])
			w.Write(buf[:size])
			if r.Buffered() == 0 {
				err = w.Flush()
			}
		case rawCount:
			left, count = n, n
			if left == 0 {
				err = done()
			}
		case rawData:
			if left--; left == 0 {
				err = done()
			}
		default:
			return fmt.Errorf("unknown raw frame type %d", typ)
		}
		if err != nil {
			return err
		}
	}
}

// rawReadyChild announces itself with one raw frame, the floor of any
// spawn-to-ready time of this program.
func rawReadyChild() error {
	f := os.NewFile(3, "raw-channel")
	defer f.Close()
	var hdr [rawHeaderSize]byte
	putRawHeader(hdr[:], 0, rawDone, 0)
	_, err := f.Write(hdr[:])
	return err
}
