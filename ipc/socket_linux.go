package ipc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Socketpair returns the two ends of a new AF_UNIX stream socketpair, both
// close-on-exec. Give one to a child (exec.Cmd.ExtraFiles clears
// close-on-exec for it) and make a Channel of the other with FromFile.
func Socketpair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ipc: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "ipc-parent"), os.NewFile(uintptr(fds[1]), "ipc-child"), nil
}

// socketBuffer is the kernel buffer size asked for each direction: larger
// than Linux's 208 KiB default so that bursts need fewer wakeups. The kernel
// caps it at net.core.wmem_max / rmem_max.
const socketBuffer = 1 << 20

func setSocketBuffers(conn *net.UnixConn) {
	conn.SetReadBuffer(socketBuffer)
	conn.SetWriteBuffer(socketBuffer)
}

// guessHandle returns the NODE_HANDLE type a Node receiver needs for f:
// "net.Server" for a listening stream socket, "net.Socket" for a connected
// one, "dgram.Socket" for a UDP socket, and "net.Native" otherwise (which a
// Node peer accepts for sockets and FIFOs only, NODE-IPC.md §3.6).
func guessHandle(f *os.File) string {
	fd := int(f.Fd())
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "net.Native"
	}
	domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	switch {
	case typ == unix.SOCK_DGRAM && (domain == unix.AF_INET || domain == unix.AF_INET6):
		return "dgram.Socket"
	case typ == unix.SOCK_STREAM:
		if acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); acc == 1 {
			return "net.Server"
		}
		if domain == unix.AF_INET || domain == unix.AF_INET6 {
			return "net.Socket"
		}
	}
	return "net.Native"
}

// udpType returns Node's dgramType ("udp4" or "udp6") for a UDP socket.
func udpType(f *os.File) string {
	if d, _ := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_DOMAIN); d == unix.AF_INET6 {
		return "udp6"
	}
	return "udp4"
}

func fcntlGetfd(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
}
