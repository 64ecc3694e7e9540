package config

import (
	"reflect"
	"testing"

	"github.com/kinproc/kin/supervisor"
)

func TestNATSSettings(t *testing.T) {
	t.Parallel()
	f, err := LoadBytes("kin.yaml", []byte(`
nats:
  sync: always
  port: 4333
  replicas: 3
  cluster:
    name: fleet
    listen: 127.0.0.1:6222
    routes: [127.0.0.1:6223, nats-route://127.0.0.1:6224]
apps:
  - name: thumbs
    command: [node, thumb.js]
    queue: {name: images, concurrency: 4, timeout: 30s, max_memory: 256M}
  - name: mails
    command: [python3, send.py]
    queue: mails
`), Options{Dir: "/srv"})
	if err != nil {
		t.Fatal(err)
	}
	want := supervisor.NATSSettings{Sync: "always", Port: 4333, Replicas: 3, Cluster: &supervisor.NATSCluster{
		Name: "fleet", Listen: "127.0.0.1:6222", Routes: []string{"127.0.0.1:6223", "nats-route://127.0.0.1:6224"},
	}}
	if f.NATS == nil || !reflect.DeepEqual(*f.NATS, want) {
		t.Errorf("NATS = %+v, want %+v", f.NATS, want)
	}
	if len(f.Apps) != 2 {
		t.Fatalf("apps = %+v", f.Apps)
	}
	q := supervisor.QueueSpec{Name: "images", Concurrency: 4, Timeout: supervisor.Duration(30e9), MaxMemory: 256 << 20}
	if f.Apps[0].Queue == nil || *f.Apps[0].Queue != q {
		t.Errorf("thumbs queue = %+v, want %+v", f.Apps[0].Queue, q)
	}
	if f.Apps[1].Queue == nil || *f.Apps[1].Queue != (supervisor.QueueSpec{Name: "mails"}) {
		t.Errorf("mails queue = %+v", f.Apps[1].Queue)
	}
	// The same in a PM2 ecosystem file, and the listen port alone.
	f, err = LoadBytes("ecosystem.config.json", []byte(`{"apps": [{"name": "w", "script": "w.js", "queue": "q"}],
  "nats": {"durability": 250, "cluster": {"listen": 6222}}}`), Options{Dir: "/srv"})
	if err != nil {
		t.Fatal(err)
	}
	if f.NATS.Sync != "250ms" || f.NATS.Cluster.Listen != "127.0.0.1:6222" || f.Apps[0].Queue.Name != "q" {
		t.Errorf("NATS %+v cluster %+v, queue %+v", f.NATS, f.NATS.Cluster, f.Apps[0].Queue)
	}
}

func TestNATSErrors(t *testing.T) {
	t.Parallel()
	const app = "apps:\n  - name: w\n    script: w.js\n"
	tests := []struct{ name, data, want string }{
		{"unknown nats key", "nats:\n  sinc: always\n", `kin.yaml:2:3: nats.sinc: unknown key (did you mean sync?)`},
		{"bad sync", "nats:\n  sync: often\n", `kin.yaml:1:1: nats: nats.sync: "often": want always or an interval such as 100ms`},
		{"sync twice", "nats:\n  sync: always\n  durability: 1s\n", `kin.yaml:3:3: nats.durability: sets what sync on line 2 sets: keep one`},
		{"bad replicas", "nats:\n  replicas: 7\n", `kin.yaml:2:3: nats.replicas: want a whole number from 1 to 5, got 7`},
		{"bad port", "nats:\n  port: http\n", `kin.yaml:2:3: nats.port: want a whole number from 1 to 65535, got "http"`},
		{"cluster without listen", "nats:\n  cluster: {routes: [a:1]}\n", `kin.yaml:2:3: nats.cluster: no listen: want the host:port this node takes routes on, e.g. 127.0.0.1:6222`},
		{"cluster bad route", "nats:\n  cluster: {listen: 127.0.0.1:6222, routes: [nohost]}\n", `kin.yaml:1:1: nats: nats.cluster.routes: "nohost": want host:port, e.g. 127.0.0.1:6222`},
		{"cluster unknown key", "nats:\n  cluster:\n    listen: 127.0.0.1:6222\n    route: [a:1]\n", `kin.yaml:4:5: nats.cluster.route: unknown key (did you mean routes?)`},
		{"cluster and urls", "nats:\n  urls: [nats://a:4222]\n  cluster: {listen: 127.0.0.1:6222}\n", `kin.yaml:1:1: nats: nats.cluster: set for the embedded server, but nats.urls names external servers: keep one`},
		{"queue unknown key", app + "    queue: {name: q, concurency: 2}\n", `kin.yaml:4:22: apps[0].queue.concurency: unknown key (did you mean concurrency?)`},
		{"queue no name", app + "    queue: {concurrency: 2}\n", `kin.yaml:4:5: apps[0].queue: no name: want the queue the app works on`},
		{"queue bad name", app + "    queue: a.b\n", `kin.yaml:4:5: apps[0].queue: name "a.b": want 1 to 64 of A–Z a–z 0–9 - _`},
		{"queue wrong type", app + "    queue: [q]\n", `kin.yaml:4:5: apps[0].queue: want a mapping (name, concurrency, timeout, max_memory) or a queue's name, got a list`},
		{"queue bad timeout", app + "    queue: {name: q, timeout: soon}\n", `kin.yaml:4:22: apps[0].queue.timeout: want a duration such as "5s" or a number of milliseconds, got "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := LoadBytes("kin.yaml", []byte(tt.data), Options{Dir: "/srv"})
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
			if f != nil {
				t.Errorf("a file with errors gave %+v", f)
			}
		})
	}
}
