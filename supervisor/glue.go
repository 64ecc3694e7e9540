package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/kinproc/kin/proc"
)

// listenSocket is an app's listening socket, owned by the supervisor and
// handed to every instance.
type listenSocket struct {
	host string
	port int
	file *os.File
}

func bindSocket(host string, port int) (*listenSocket, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", port, err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		return nil, err
	}
	return &listenSocket{host: host, port: port, file: f}, nil
}

func (l *listenSocket) Close() error { return l.file.Close() }

func (l *listenSocket) activate(cmd *proc.Cmd) error {
	cmd.ExtraFiles = append([]*os.File{l.file}, cmd.ExtraFiles...)
	cmd.Env = append(cmd.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES=http", "KIN_LISTEN="+strconv.Itoa(l.port))
	cmd.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`}, cmd.Args...)
	cmd.Path = "/bin/sh"
	return nil
}

func (s *Server) nodePreload() (string, error) {
	return "", fmt.Errorf("supervisor: node preload not available yet")
}
