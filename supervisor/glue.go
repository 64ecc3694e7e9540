package supervisor

import (
	"os"
	"path/filepath"

	"github.com/kinproc/kin/cluster"
	"github.com/kinproc/kin/proc"
)

// listenSocket is an app's listening socket, owned by the supervisor and
// handed to every instance (see package cluster); host and port are what it
// was bound for, to notice a changed spec.
type listenSocket struct {
	host string
	port int
	*cluster.Socket
}

func bindSocket(host string, port int) (*listenSocket, error) {
	s, err := cluster.Bind(cluster.Spec{Host: host, Port: port})
	if err != nil {
		return nil, err
	}
	return &listenSocket{host: host, port: port, Socket: s}, nil
}

func (l *listenSocket) activate(cmd *proc.Cmd) error { return cluster.Activate(cmd, l.Socket) }

// nodePreload writes kin's Node preload into Home/lib (or a directory under
// the system's temporary one without a Home) and returns its path.
func (s *Server) nodePreload() (string, error) {
	s.preloadMu.Lock()
	defer s.preloadMu.Unlock()
	if s.preloadPath != "" {
		if _, err := os.Stat(s.preloadPath); err == nil {
			return s.preloadPath, nil
		}
	}
	dir := filepath.Join(os.TempDir(), "kin-lib")
	if s.cfg.Home != "" {
		dir = filepath.Join(s.cfg.Home, "lib")
	}
	p, err := cluster.WriteNodePreload(dir)
	if err != nil {
		return "", err
	}
	s.preloadPath = p
	return p, nil
}
