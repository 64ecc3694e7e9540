package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDaemonRunning is returned by ListenControl when another daemon already
// serves the home directory.
var ErrDaemonRunning = errors.New("supervisor: a daemon is already running for this home")

// SocketPath returns the control socket's path in home.
func SocketPath(home string) string { return filepath.Join(home, "kin.sock") }

// LockPath returns the path of the daemon's lock file in home.
func LockPath(home string) string { return filepath.Join(home, "kin.lock") }

// Control is the daemon's hold on its home: the control socket's listener
// and the lock that makes it the only daemon there.
type Control struct {
	net.Listener
	lock *os.File
}

// Close closes the listener, removes the socket file and releases the lock.
func (c *Control) Close() error {
	err := c.Listener.Close()
	os.Remove(c.Listener.Addr().String())
	c.lock.Close()
	return err
}

// ListenControl makes this process the daemon of home: it creates home
// (mode 0700), takes an exclusive lock on kin.lock — so that of several
// daemons started at once exactly one goes on — removes a stale kin.sock,
// and listens on it with mode 0600.
func ListenControl(home string) (*Control, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	sock := SocketPath(home)
	if len(sock) >= 108 {
		return nil, fmt.Errorf("supervisor: socket path %s is %d bytes, over the 107 a unix socket allows: set KIN_HOME to a shorter directory", sock, len(sock))
	}
	lock, err := os.OpenFile(LockPath(home), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrDaemonRunning
		}
		return nil, fmt.Errorf("supervisor: lock %s: %w", LockPath(home), err)
	}
	// We hold the lock, so whatever answers on the socket is not a daemon
	// of ours; a socket file left by a killed daemon is removed.
	if c, err := net.DialTimeout("unix", sock, 200*time.Millisecond); err == nil {
		c.Close()
		lock.Close()
		return nil, fmt.Errorf("supervisor: %s is answered by another process: stop it or set KIN_HOME elsewhere", sock)
	}
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		lock.Close()
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &Control{Listener: l, lock: lock}, nil
}
