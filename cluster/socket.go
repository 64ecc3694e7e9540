package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned when a closed Socket is used.
var ErrClosed = errors.New("cluster: socket closed")

// Spec describes a listening socket for Bind. The zero value is a TCP socket
// on a free port on all interfaces.
type Spec struct {
	// Host is the TCP address to bind: an IP address or a host name. Empty
	// means all interfaces, IPv4 and IPv6 where the system has both, as
	// net.Listen("tcp", ":3000") does.
	Host string
	// Port is the TCP port; zero picks a free one (Socket.Addr tells which).
	Port int
	// Path, when not empty, makes a unix stream socket at this path instead
	// of a TCP one; Host and Port must then be zero. A stale socket file
	// that nobody answers on is replaced; a live one is an error.
	Path string
	// Mode, when not zero, is applied to the unix socket file (for a proxy
	// running as another user); zero leaves what the umask gives.
	Mode os.FileMode
	// Name is the socket's entry in LISTEN_FDNAMES: printable ASCII without
	// ':' or spaces, at most 255 bytes. Empty means the port number for TCP
	// ("3000") and the file name for a unix socket ("app.sock").
	Name string
}

// Socket is a listening socket owned by the parent, to be inherited by the
// instances it starts (see Activate). It stays open, with connections
// queueing on it, until Close, however many instances come and go. Its
// methods are safe for concurrent use.
//
// The descriptor is created in blocking mode and is never registered with
// this process's poller: this process does not accept on it, and its own
// use of the descriptor (os/exec handing it to a child) never changes the
// O_NONBLOCK flag that the instances, sharing the open file description,
// depend on (Node and Go put it in non-blocking mode; a blocking accept
// would stall their event loops).
type Socket struct {
	name    string
	network string // "tcp" or "unix"
	addr    net.Addr
	inode   uint64
	path    string    // unix: the file to remove on Close
	pathID  [2]uint64 // unix: dev and inode of that file when bound

	mu   sync.Mutex
	file *os.File // nil once closed
}

// Bind creates the listening socket described by spec: SO_REUSEADDR, and a
// backlog of the system's somaxconn, as net.Listen does.
func Bind(spec Spec) (*Socket, error) {
	return bind(spec, false)
}

// bind is Bind, with SO_REUSEPORT when reusePort (for measurements: one
// socket per instance slot instead of one shared by all).
func bind(spec Spec, reusePort bool) (*Socket, error) {
	if spec.Path != "" {
		if spec.Host != "" || spec.Port != 0 {
			return nil, fmt.Errorf("cluster: bind: a unix socket (path %q) takes no host or port", spec.Path)
		}
		return bindUnix(spec)
	}
	if spec.Port < 0 || spec.Port > 65535 {
		return nil, fmt.Errorf("cluster: bind: port %d out of range", spec.Port)
	}
	name := spec.Name
	if err := checkName(name); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // host name lookup
	defer cancel()
	addr := net.JoinHostPort(spec.Host, strconv.Itoa(spec.Port))
	lc := new(net.ListenConfig)
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
			return err
		}
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind %s: %w", addr, err)
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	if name == "" {
		name = strconv.Itoa(tcpAddr.Port)
	}
	f, ino, err := detach(ln, name)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind %s: %w", addr, err)
	}
	return &Socket{name: name, network: "tcp", addr: tcpAddr, inode: ino, file: f}, nil
}

func bindUnix(spec Spec) (*Socket, error) {
	path := spec.Path
	name := spec.Name
	if name == "" {
		name = strings.Map(func(r rune) rune {
			if r <= ' ' || r > '~' || r == ':' {
				return '_'
			}
			return r
		}, filepath.Base(path))
		if len(name) > 255 {
			name = name[:255]
		}
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cluster: bind %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the Socket owns the file from now on
	s := &Socket{name: name, network: "unix", addr: ln.Addr(), path: path}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		s.pathID = [2]uint64{uint64(st.Dev), st.Ino}
	}
	if spec.Mode != 0 {
		if err := os.Chmod(path, spec.Mode); err != nil {
			ln.Close()
			os.Remove(path)
			return nil, fmt.Errorf("cluster: bind %s: %w", path, err)
		}
	}
	f, ino, err := detach(ln, name)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("cluster: bind %s: %w", path, err)
	}
	s.file, s.inode = f, ino
	return s, nil
}

// removeStale removes a unix socket file left by a process that is gone:
// dial first; if someone answers, the path is in use.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: bind %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("cluster: bind %s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("cluster: bind %s: another process is listening on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: bind %s: remove stale socket: %w", path, err)
	}
	return nil
}

// detach takes a blocking, close-on-exec duplicate of ln's descriptor as a
// plain *os.File and closes ln (which only closes ln's own descriptor: the
// socket keeps listening). The file is made in blocking mode so that os
// does not register it with the poller nor ever flip O_NONBLOCK on the
// shared file description (see Socket). It also returns the socket's inode.
func detach(ln net.Listener, name string) (*os.File, uint64, error) {
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		ln.Close()
		return nil, 0, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 3)
	}); err != nil {
		dupErr = err
	}
	ln.Close()
	if dupErr != nil {
		return nil, 0, fmt.Errorf("dup: %w", dupErr)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("fstat: %w", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("set blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "cluster:"+name), st.Ino, nil
}

// checkName reports a name that cannot be a LISTEN_FDNAMES entry.
func checkName(name string) error {
	if len(name) > 255 {
		return fmt.Errorf("cluster: socket name %.20q…: longer than 255 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("cluster: socket name %q: use printable ASCII without ':' or spaces", name)
		}
	}
	return nil
}

// Name returns the socket's LISTEN_FDNAMES entry.
func (s *Socket) Name() string { return s.name }

// Network returns "tcp" or "unix".
func (s *Socket) Network() string { return s.network }

// Addr returns the bound address: a *net.TCPAddr with the actual port (an
// unspecified IP for all interfaces), or a *net.UnixAddr.
func (s *Socket) Addr() net.Addr { return s.addr }

// Port returns the TCP port, or 0 for a unix socket.
func (s *Socket) Port() int {
	if a, ok := s.addr.(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// File returns the listening socket's descriptor, close-on-exec in this
// process (proc and os/exec hand it on through ExtraFiles), or nil after
// Close. The Socket owns it: do not close it.
func (s *Socket) File() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file
}

// Close closes this process's descriptor, and removes a unix socket's file
// if it is still the one Bind made. Instances that inherited the socket keep
// serving on it until they exit; once the last holder closes it, queued
// connections are reset. Close only after every Cmd activated with s has
// started: Activate records the descriptor, Start duplicates it. Closing
// twice does nothing.
func (s *Socket) Close() error {
	s.mu.Lock()
	f := s.file
	s.file = nil
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f.Close()
	if s.path != "" {
		var st unix.Stat_t
		if unix.Lstat(s.path, &st) == nil && [2]uint64{uint64(st.Dev), st.Ino} == s.pathID {
			os.Remove(s.path)
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: close %s: %w", s.name, err)
	}
	return nil
}

// String returns the socket's network and address, for messages.
func (s *Socket) String() string {
	return s.network + ":" + s.addr.String()
}
