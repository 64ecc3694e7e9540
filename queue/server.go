package queue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kinproc/kin/internal/atomicfile"
)

// ServerConfig configures an embedded NATS server. Dir is required; every
// other field's zero value is a sensible default.
type ServerConfig struct {
	// Dir holds the JetStream file store and the credentials file
	// (normally $KIN_HOME/nats). It is created (mode 0700) if missing.
	Dir string
	// Host is the address clients connect to; empty means 127.0.0.1.
	Host string
	// Port is the client port; zero means a random free port.
	Port int
	// Sync is the durability setting: "always" fsyncs every write before
	// it is acknowledged; a duration ("100ms", "1s") fsyncs that often, so
	// that a kill -9 of the process loses nothing acknowledged (every write
	// has reached the kernel) and a power cut loses at most that window.
	// Empty means "100ms". (nats-server's own default, 2 minutes, is never
	// used.)
	Sync string
	// User and Password are the credentials clients must present. When
	// both are empty they are read from Dir/credentials.json, or generated
	// (a random password) and stored there with mode 0600.
	User, Password string
	// Name is the server's name, which must be unique in a cluster; empty
	// means one derived from the host name and Dir, stable across restarts.
	Name string
	// Cluster, when its Listen is set, makes this server a node of a NATS
	// cluster: JetStream then replicates streams across nodes.
	Cluster ClusterConfig
	// MaxStore bounds the JetStream file store in bytes; zero means
	// nats-server's default (most of the free disk).
	MaxStore int64
	// MaxPayload bounds a message (a job's data, a result); zero means
	// 8 MiB.
	MaxPayload int32
	// Log receives the server's log lines; nil means none.
	Log io.Writer
	// Debug adds debug lines to Log.
	Debug bool
	// StartTimeout bounds how long StartServer waits for the server to take
	// connections; zero means 10 s.
	StartTimeout time.Duration
}

// ClusterConfig makes an embedded server a node of a NATS cluster. Nodes
// find each other through Routes; three nodes give JetStream a quorum, so
// that a queue with 3 replicas survives the loss of one.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node; empty means "kin".
	Name string
	// Listen is the host:port this node takes routes on (e.g.
	// "127.0.0.1:6222"); empty means no cluster.
	Listen string
	// Routes are the other nodes' route addresses (host:port or
	// nats-route://host:port). Listing this node's own address is harmless.
	Routes []string
	// User and Password, when set, are required of the routes between
	// nodes: give every node the same ones.
	User, Password string
}

// DefaultSyncInterval is the fsync interval when ServerConfig.Sync is empty.
const DefaultSyncInterval = 100 * time.Millisecond

// ParseSync checks a durability setting: "always", a positive duration, or
// empty for the default.
func ParseSync(s string) (always bool, interval time.Duration, err error) {
	switch s {
	case "":
		return false, DefaultSyncInterval, nil
	case "always":
		return true, DefaultSyncInterval, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("queue: sync %q: want \"always\" or a positive duration such as \"100ms\"", s)
	}
	return false, d, nil
}

// Server is an embedded NATS server with JetStream.
type Server struct {
	ns       *server.Server
	cfg      ServerConfig
	user     string
	password string
	once     sync.Once
}

// CredentialsFile is the name, in ServerConfig.Dir, of the file that holds
// the generated credentials.
const CredentialsFile = "credentials.json"

// Credentials are what a client presents to the server.
type Credentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// ReadCredentials returns the credentials stored in dir by StartServer, for
// clients in other processes.
func ReadCredentials(dir string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(filepath.Join(dir, CredentialsFile))
	if err != nil {
		return c, fmt.Errorf("queue: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.User == "" || c.Password == "" {
		return Credentials{}, fmt.Errorf("queue: %s: malformed credentials", filepath.Join(dir, CredentialsFile))
	}
	return c, nil
}

func loadOrCreateCredentials(dir string) (Credentials, error) {
	c, err := ReadCredentials(dir)
	if err == nil {
		return c, nil
	}
	if _, statErr := os.Stat(filepath.Join(dir, CredentialsFile)); statErr == nil {
		return c, err // present but unreadable or malformed: do not overwrite
	}
	var buf [24]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return c, fmt.Errorf("queue: %w", err)
	}
	c = Credentials{User: "kin", Password: hex.EncodeToString(buf[:])}
	b, _ := json.Marshal(c)
	if err := atomicfile.Write(filepath.Join(dir, CredentialsFile), append(b, '\n'), 0o600); err != nil {
		return Credentials{}, fmt.Errorf("queue: store credentials: %w", err)
	}
	return c, nil
}

// StartServer starts an embedded NATS server with JetStream and returns once
// it takes connections. Its goroutines run until Shutdown.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("queue: ServerConfig.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	always, interval, err := ParseSync(cfg.Sync)
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 8 << 20
	}
	creds := Credentials{User: cfg.User, Password: cfg.Password}
	if creds.User == "" && creds.Password == "" {
		if creds, err = loadOrCreateCredentials(dir); err != nil {
			return nil, err
		}
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		sum := sha256.Sum256([]byte(dir))
		cfg.Name = "kin-" + sanitizeName(host) + "-" + hex.EncodeToString(sum[:4])
	}
	opts := &server.Options{
		ServerName:        cfg.Name,
		Host:              cfg.Host,
		Port:              cfg.Port,
		NoLog:             cfg.Log == nil,
		NoSigs:            true,
		JetStream:         true,
		StoreDir:          dir,
		SyncAlways:        always,
		SyncInterval:      interval,
		JetStreamMaxStore: cfg.MaxStore,
		MaxPayload:        cfg.MaxPayload,
		Users:             []*server.User{{Username: creds.User, Password: creds.Password}},
		Debug:             cfg.Debug,
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if cfg.Cluster.Listen != "" {
		if err := clusterOptions(opts, cfg.Cluster); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: nats-server: %w", err)
	}
	if cfg.Log != nil {
		ns.SetLogger(&writerLogger{w: cfg.Log}, cfg.Debug, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.StartTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("queue: nats-server did not take connections within %v (is %s:%d free, %s writable?)", cfg.StartTimeout, cfg.Host, cfg.Port, dir)
	}
	return &Server{ns: ns, cfg: cfg, user: creds.User, password: creds.Password}, nil
}

func clusterOptions(opts *server.Options, c ClusterConfig) error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("queue: cluster listen %q: %w", c.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("queue: cluster listen %q: bad port", c.Listen)
	}
	opts.Cluster.Name = c.Name
	if opts.Cluster.Name == "" {
		opts.Cluster.Name = "kin"
	}
	opts.Cluster.Host, opts.Cluster.Port = host, p
	opts.Cluster.Username, opts.Cluster.Password = c.User, c.Password
	for _, r := range c.Routes {
		if !strings.Contains(r, "://") {
			r = "nats-route://" + r
		}
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("queue: cluster route %q: not host:port", r)
		}
		if c.User != "" {
			u.User = url.UserPassword(c.User, c.Password)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "host"
	}
	return string(b)
}

// ClientURL returns the URL clients in other processes connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Credentials returns the credentials clients must present.
func (s *Server) Credentials() Credentials {
	return Credentials{User: s.user, Password: s.password}
}

// Name returns the server's name.
func (s *Server) Name() string { return s.ns.Name() }

// Dir returns the server's store directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// ClusterAddr returns the address this node takes routes on, or nil when it
// is not clustered.
func (s *Server) ClusterAddr() net.Addr {
	if a := s.ns.ClusterAddr(); a != nil {
		return a
	}
	return nil
}

// NumRoutes returns the number of routes to other cluster nodes.
func (s *Server) NumRoutes() int { return s.ns.NumRoutes() }

// JetStreamReady reports whether JetStream can take requests: always true
// for a single server, and once the cluster has a meta leader and this node
// is current for a cluster node.
func (s *Server) JetStreamReady() bool {
	if !s.ns.JetStreamEnabled() {
		return false
	}
	if s.cfg.Cluster.Listen == "" {
		return true
	}
	return s.ns.JetStreamIsCurrent()
}

// Shutdown stops the server: clients are disconnected and every goroutine
// of the server has exited when it returns. It is idempotent.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

// writerLogger adapts an io.Writer to nats-server's Logger.
type writerLogger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *writerLogger) line(level, format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s nats %s %s\n", time.Now().Format("2006-01-02T15:04:05.000"), level, fmt.Sprintf(format, v...))
}

func (l *writerLogger) Noticef(format string, v ...any) { l.line("INF", format, v) }
func (l *writerLogger) Warnf(format string, v ...any)   { l.line("WRN", format, v) }
func (l *writerLogger) Fatalf(format string, v ...any)  { l.line("FTL", format, v) }
func (l *writerLogger) Errorf(format string, v ...any)  { l.line("ERR", format, v) }
func (l *writerLogger) Debugf(format string, v ...any)  { l.line("DBG", format, v) }
func (l *writerLogger) Tracef(format string, v ...any)  { l.line("TRC", format, v) }
