package supervisor

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// NATSSettings say where kin's queue and bus live: the nats mapping of a
// config file. The zero value is the default: an embedded NATS server,
// started by the daemon when a queue or the bus is first used, listening on
// 127.0.0.1 on a port kept across daemon restarts, with its store under
// $KIN_HOME/nats and an fsync every 100 ms.
type NATSSettings struct {
	// URLs are the servers of an external NATS cluster ("nats://host:4222");
	// empty means the embedded server. $KIN_NATS_URL (comma-separated) sets
	// them too, and wins.
	URLs []string `json:"urls,omitempty"`
	// User and Password authenticate to URLs; empty means none (or the
	// credentials in the URLs themselves).
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// Replicas is how many servers keep each queue's streams; zero means 1.
	// Use 3 on a cluster of three or more.
	Replicas int `json:"replicas,omitempty"`

	// Sync is the embedded server's durability: "always" fsyncs every write
	// before acknowledging it; a duration fsyncs that often. Empty means
	// 100ms.
	Sync string `json:"sync,omitempty"`
	// Host and Port are the embedded server's client address; empty means
	// 127.0.0.1, zero a free port chosen once and kept in $KIN_HOME/nats.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// MaxStore bounds the embedded server's store, in bytes; zero means
	// nats-server's default (most of the free disk).
	MaxStore int64 `json:"max_store,omitempty"`
	// Cluster, when set, makes the embedded server a node of a NATS cluster
	// with the embedded servers of other kin daemons. The server then starts
	// with the daemon (or when the settings arrive), not on first use, so
	// that it keeps the other nodes' replicas.
	Cluster *NATSCluster `json:"cluster,omitempty"`
}

// NATSCluster is the cluster mapping of NATSSettings: NATS routes between
// the embedded servers of several kin daemons. The zero value is no
// cluster.
type NATSCluster struct {
	// Name is the cluster's name, the same on every node; empty means "kin".
	Name string `json:"name,omitempty"`
	// Listen is the host:port this node takes routes on ("127.0.0.1:6222",
	// or ":6222" for all interfaces). Required.
	Listen string `json:"listen"`
	// Routes are the route addresses of the other nodes (host:port or
	// nats-route://host:port); this node's own address may be among them.
	Routes []string `json:"routes,omitempty"`
	// User and Password, when set, are required of routes between nodes:
	// give every node the same ones.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// Validate reports the first thing wrong with s, naming the key as it is
// written in a config file.
func (s *NATSSettings) Validate() error {
	for _, u := range s.URLs {
		if u == "" || strings.ContainsAny(u, " \t\n") {
			return fmt.Errorf("nats.urls: %q is no URL (want nats://host:4222)", u)
		}
	}
	if s.Replicas < 0 || s.Replicas > 5 {
		return fmt.Errorf("nats.replicas: %d: want 1 to 5", s.Replicas)
	}
	if s.Sync != "" && s.Sync != "always" {
		d, err := time.ParseDuration(s.Sync)
		if err != nil || d <= 0 {
			return fmt.Errorf("nats.sync: %q: want always or an interval such as 100ms", s.Sync)
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("nats.port: %d out of range", s.Port)
	}
	if s.MaxStore < 0 {
		return fmt.Errorf("nats.max_store: negative")
	}
	if c := s.Cluster; c != nil {
		if len(s.URLs) > 0 {
			return fmt.Errorf("nats.cluster: set for the embedded server, but nats.urls names external servers: keep one")
		}
		if err := checkHostPort(c.Listen); err != nil {
			return fmt.Errorf("nats.cluster.listen: %v", err)
		}
		for _, r := range c.Routes {
			if err := checkHostPort(strings.TrimPrefix(r, "nats-route://")); err != nil {
				return fmt.Errorf("nats.cluster.routes: %v", err)
			}
		}
	}
	return nil
}

func checkHostPort(s string) error {
	if s == "" {
		return fmt.Errorf("missing: want host:port, e.g. 127.0.0.1:6222")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:6222", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

// NATSInfo tells a client where the daemon's NATS is: the answer of
// POST /v1/nats. The zero value reaches nothing.
type NATSInfo struct {
	// URLs are the servers to connect to.
	URLs []string `json:"urls"`
	// User and Password are the credentials to present; empty means none.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// Embedded is true when the daemon runs the server itself.
	Embedded bool `json:"embedded"`
	// Replicas is the replicas setting for the queues clients create.
	Replicas int `json:"replicas,omitempty"`
	// Dir is the embedded server's store; empty for external servers.
	Dir string `json:"dir,omitempty"`
	// Sync is the embedded server's durability setting.
	Sync string `json:"sync,omitempty"`
}

// QueueSpec makes an app a consumer of a queue (the queue mapping of an app
// in a config file): each instance runs `kin queue work` with the app's
// command as the worker program. The zero value of each field is documented
// beside it.
type QueueSpec struct {
	// Name is the queue; required.
	Name string `json:"name"`
	// Concurrency is how many worker processes of the command each instance
	// runs, one job each at a time; zero means one per CPU.
	Concurrency int `json:"concurrency,omitempty"`
	// Timeout is the timeout of jobs that set none; zero means none.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxMemory is the memory limit, in bytes, of jobs that set none; zero
	// means none.
	MaxMemory int64 `json:"max_memory,omitempty"`
}

// ValidQueueName reports whether name is a queue's name: 1 to 64 characters
// among A–Z a–z 0–9 - _ (package queue's rule).
func ValidQueueName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// check reports the first thing wrong with q.
func (q *QueueSpec) check() error {
	switch {
	case !ValidQueueName(q.Name):
		return fmt.Errorf("queue.name %q: want 1 to 64 of A–Z a–z 0–9 - _", q.Name)
	case q.Concurrency < 0:
		return fmt.Errorf("queue.concurrency %d: want a count", q.Concurrency)
	case q.Timeout < 0:
		return fmt.Errorf("queue.timeout: negative")
	case q.MaxMemory < 0:
		return fmt.Errorf("queue.max_memory: negative")
	}
	return nil
}

// queueArgs returns the command an instance of a queue app runs: prefix
// (the `kin queue work` command line, Config.QueueWorker) with the queue
// settings and the drain timeout, then "--" and the app's own command.
func (q *QueueSpec) queueArgs(prefix, command []string, drain time.Duration) []string {
	argv := append([]string(nil), prefix...)
	argv = append(argv, q.Name, "--drain-timeout", drain.String())
	if q.Concurrency > 0 {
		argv = append(argv, "-c", strconv.Itoa(q.Concurrency))
	}
	if q.Timeout > 0 {
		argv = append(argv, "--timeout", time.Duration(q.Timeout).String())
	}
	if q.MaxMemory > 0 {
		argv = append(argv, "--max-memory", strconv.FormatInt(q.MaxMemory, 10))
	}
	argv = append(argv, "--")
	return append(argv, command...)
}

// queueApp returns the spec an instance of a queue app runs: `kin queue
// work` (Config.QueueWorker) with the app's command as the worker program,
// run directly (the workers, not kin, get Node's channel), with KIN_HOME
// so that it finds the daemon's NATS, and a drain that ends before the
// app's kill timeout.
func (s *Server) queueApp(spec *AppSpec) (*AppSpec, error) {
	if len(s.cfg.QueueWorker) == 0 {
		return nil, fmt.Errorf("supervisor: app %s consumes queue %s, but this supervisor runs no queue workers (Config.QueueWorker)", spec.Name, spec.Queue.Name)
	}
	q := *spec
	q.Interpreter = ""
	kill := spec.KillTimeout.D()
	if kill <= 0 {
		kill = DefaultKillTimeout
	}
	q.Command = spec.Queue.queueArgs(s.cfg.QueueWorker, spec.Command, kill*8/10)
	env := make(map[string]string, len(spec.Env)+1)
	for k, v := range spec.Env {
		env[k] = v
	}
	if s.cfg.Home != "" {
		if _, set := env["KIN_HOME"]; !set {
			env["KIN_HOME"] = s.cfg.Home
		}
	}
	q.Env = env
	return &q, nil
}
