// Package natsd is the kin daemon's NATS: the embedded server under
// $KIN_HOME/nats, started when a queue or the bus is first used (or with
// the daemon, for a cluster node), or external servers named by
// $KIN_NATS_URL or the nats settings of a config file. It keeps the
// settings and the embedded server's port in $KIN_HOME/nats, so that a
// restarted daemon serves the same store on the same address and clients
// that were connected find it again.
package natsd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kinproc/kin/internal/atomicfile"
	"github.com/kinproc/kin/queue"
	"github.com/kinproc/kin/supervisor"
)

// Files in the store directory besides nats-server's own.
const (
	settingsFile = "settings.json" // the last NATSSettings applied
	portFile     = "port"          // the embedded server's client port
)

// Config configures a Manager. Home is required.
type Config struct {
	// Home is $KIN_HOME; the embedded server's store is Home/nats.
	Home string
	// EnvURLs are the servers named by $KIN_NATS_URL; they win over the
	// settings' URLs. Nil means none.
	EnvURLs []string
	// Log receives what the manager does; nil means nowhere.
	Log *slog.Logger
	// ServerLog receives the embedded server's own log; nil means nowhere.
	ServerLog io.Writer
}

// Manager runs or finds the daemon's NATS. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg Config
	dir string
	log *slog.Logger

	mu       sync.Mutex
	settings supervisor.NATSSettings
	srv      *queue.Server
	info     supervisor.NATSInfo
	client   *queue.Client
	closed   bool
}

// ParseURLs splits $KIN_NATS_URL: URLs separated by commas or spaces.
func ParseURLs(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// New returns a manager with the settings last applied in cfg.Home. A
// cluster node's server starts at once: the other nodes need it for their
// replicas whether or not anything here uses a queue.
func New(cfg Config) (*Manager, error) {
	m := &Manager{cfg: cfg, dir: filepath.Join(cfg.Home, "nats"), log: cfg.Log}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := os.ReadFile(filepath.Join(m.dir, settingsFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("natsd: %w", err)
	default:
		if err := json.Unmarshal(b, &m.settings); err != nil {
			return nil, fmt.Errorf("natsd: %s: %v (remove it to use the defaults)", filepath.Join(m.dir, settingsFile), err)
		}
	}
	if m.settings.Cluster != nil && len(cfg.EnvURLs) == 0 {
		m.mu.Lock()
		_, err := m.ensureLocked()
		m.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Apply replaces the settings with s when s is not nil, makes sure the
// server runs, and says how to reach it. Settings that differ from those of
// a running embedded server are refused (nothing changes): the server's
// clients would all have to move.
func (m *Manager) Apply(ctx context.Context, s *supervisor.NATSSettings) (supervisor.NATSInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return supervisor.NATSInfo{}, errors.New("natsd: the daemon is shutting down")
	}
	if s != nil && !reflect.DeepEqual(*s, m.settings) {
		if err := s.Validate(); err != nil {
			return supervisor.NATSInfo{}, err
		}
		if m.srv != nil || m.client != nil {
			return supervisor.NATSInfo{}, fmt.Errorf("the queue's NATS already runs with other settings (%s): run kin kill, then start again to change them", m.describe())
		}
		if err := m.saveSettings(*s); err != nil {
			return supervisor.NATSInfo{}, err
		}
		m.settings = *s
	}
	return m.ensureLocked()
}

// Client returns an in-process client of the daemon's NATS (for the bus
// bridge), starting the server if needed.
func (m *Manager) Client(ctx context.Context) (*queue.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("natsd: the daemon is shutting down")
	}
	if m.client != nil {
		return m.client, nil
	}
	info, err := m.ensureLocked()
	if err != nil {
		return nil, err
	}
	cc := queue.ConnectConfig{Server: m.srv, Name: "kin daemon", Queue: queue.QueueConfig{Replicas: info.Replicas}}
	if m.srv == nil {
		cc.URLs, cc.User, cc.Password = info.URLs, info.User, info.Password
	}
	c, err := queue.Connect(ctx, cc)
	if err != nil {
		return nil, err
	}
	m.client = c
	return c, nil
}

// Running reports whether the embedded server runs.
func (m *Manager) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv != nil
}

// Close closes the daemon's client and stops the embedded server. It is
// idempotent.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.client != nil {
		m.client.Close()
		m.client = nil
	}
	if m.srv != nil {
		m.srv.Shutdown()
		m.srv = nil
	}
}

// describe names the current settings for a message.
func (m *Manager) describe() string {
	if urls := m.urls(); len(urls) > 0 {
		return "external " + strings.Join(redact(urls), ",")
	}
	s := "embedded " + m.info.URLs[0]
	if c := m.settings.Cluster; c != nil {
		s += ", cluster " + c.Listen
	}
	return s
}

// urls are the external servers, if any: $KIN_NATS_URL, else the settings'.
func (m *Manager) urls() []string {
	if len(m.cfg.EnvURLs) > 0 {
		return m.cfg.EnvURLs
	}
	return m.settings.URLs
}

func (m *Manager) ensureLocked() (supervisor.NATSInfo, error) {
	if len(m.info.URLs) > 0 {
		return m.info, nil
	}
	if urls := m.urls(); len(urls) > 0 {
		m.info = supervisor.NATSInfo{URLs: urls, User: m.settings.User, Password: m.settings.Password, Replicas: m.settings.Replicas}
		return m.info, nil
	}
	s := m.settings
	sc := queue.ServerConfig{
		Dir:      m.dir,
		Host:     s.Host,
		Port:     s.Port,
		Sync:     s.Sync,
		MaxStore: s.MaxStore,
		Log:      m.cfg.ServerLog,
	}
	if c := s.Cluster; c != nil {
		sc.Cluster = queue.ClusterConfig{Name: c.Name, Listen: c.Listen, Routes: c.Routes, User: c.User, Password: c.Password}
	}
	kept := 0
	if sc.Port == 0 {
		kept = m.keptPort()
		sc.Port = kept
	}
	t0 := time.Now()
	srv, err := queue.StartServer(sc)
	if err != nil && kept != 0 {
		// The port kept from the last run is taken: clients that knew it
		// ask the daemon again anyway.
		m.log.Warn("nats: the port of the last run is taken; choosing another", "port", kept, "err", err)
		sc.Port = 0
		srv, err = queue.StartServer(sc)
	}
	if err != nil {
		return supervisor.NATSInfo{}, fmt.Errorf("starting the queue's NATS server in %s: %w", m.dir, err)
	}
	port := portOf(srv.ClientURL())
	if s.Port == 0 && port != 0 && port != kept {
		if err := atomicfile.Write(filepath.Join(m.dir, portFile), []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
			m.log.Warn("nats: cannot keep the port for the next run", "err", err)
		}
	}
	creds := srv.Credentials()
	m.srv = srv
	sync := s.Sync
	if sync == "" {
		sync = queue.DefaultSyncInterval.String()
	}
	m.info = supervisor.NATSInfo{
		URLs: []string{srv.ClientURL()}, User: creds.User, Password: creds.Password,
		Embedded: true, Replicas: s.Replicas, Dir: m.dir, Sync: sync,
	}
	attrs := []any{"url", srv.ClientURL(), "dir", m.dir, "sync", sync, "took", time.Since(t0).Round(time.Millisecond)}
	if a := srv.ClusterAddr(); a != nil {
		attrs = append(attrs, "cluster", a.String())
	}
	m.log.Info("nats server started", attrs...)
	return m.info, nil
}

func (m *Manager) keptPort() int {
	b, err := os.ReadFile(filepath.Join(m.dir, portFile))
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

func (m *Manager) saveSettings(s supervisor.NATSSettings) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(m.dir, settingsFile), append(b, '\n'), 0o600)
}

func portOf(u string) int {
	pu, err := url.Parse(u)
	if err != nil {
		return 0
	}
	_, p, err := net.SplitHostPort(pu.Host)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// redact drops passwords from URLs, for messages.
func redact(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if pu, err := url.Parse(u); err == nil && pu.User != nil {
			pu.User = url.User(pu.User.Username())
			u = pu.String()
		}
		out[i] = u
	}
	return out
}
