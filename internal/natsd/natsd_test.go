package natsd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
	"github.com/kinproc/kin/supervisor"
)

func TestMain(m *testing.M) { kintest.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// The embedded server starts on first use, keeps its port and settings in
// the home, and a new manager (a restarted daemon) serves the same store on
// the same address.
func TestEmbeddedLazyAndKept(t *testing.T) {
	home := t.TempDir()
	m, err := New(Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("the server started before anything used it")
	}
	info, err := m.Apply(ctx(t), &supervisor.NATSSettings{Sync: "always"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Embedded || len(info.URLs) != 1 || info.User == "" || info.Password == "" || info.Sync != "always" || info.Dir != filepath.Join(home, "nats") {
		t.Fatalf("info %+v", info)
	}
	c, err := queue.Connect(ctx(t), queue.ConnectConfig{URLs: info.URLs, User: info.User, Password: info.Password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx(t), "kept", queue.JobSpec{ID: "j1"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Other settings while it runs: refused, nothing changes.
	if _, err := m.Apply(ctx(t), &supervisor.NATSSettings{Sync: "1s"}); err == nil || !strings.Contains(err.Error(), "already runs with other settings") {
		t.Errorf("changed settings while running: %v", err)
	}
	// The same settings again: fine.
	if again, err := m.Apply(ctx(t), &supervisor.NATSSettings{Sync: "always"}); err != nil || again.URLs[0] != info.URLs[0] {
		t.Errorf("same settings: %+v, %v", again, err)
	}
	m.Close()
	m.Close()
	for _, f := range []string{"settings.json", "port", "credentials.json"} {
		fi, err := os.Stat(filepath.Join(home, "nats", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}

	m2, err := New(Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	info2, err := m2.Apply(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info2.URLs[0] != info.URLs[0] || info2.Password != info.Password || info2.Sync != "always" {
		t.Errorf("after a restart: %+v, want the URL, credentials and sync of %+v", info2, info)
	}
	qc, err := m2.Client(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if j, err := qc.Get(ctx(t), "kept", "j1"); err != nil || j.State != queue.Waiting {
		t.Errorf("the job added before the restart: %+v, %v", j, err)
	}
}

// $KIN_NATS_URL (EnvURLs) wins over everything: no embedded server.
func TestExternal(t *testing.T) {
	ext, err := queue.StartServer(queue.ServerConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown()
	home := t.TempDir()
	cr := ext.Credentials()
	m, err := New(Config{Home: home, EnvURLs: ParseURLs(" " + ext.ClientURL() + ", ")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info, err := m.Apply(ctx(t), &supervisor.NATSSettings{User: cr.User, Password: cr.Password, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if info.Embedded || len(info.URLs) != 1 || info.URLs[0] != ext.ClientURL() || m.Running() {
		t.Errorf("info %+v, running %v", info, m.Running())
	}
	if _, err := m.Client(ctx(t)); err != nil {
		t.Errorf("client of the external server: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "nats", "port")); err == nil {
		t.Error("a port kept for an external server")
	}
}

func TestBadSettingsFile(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "nats"), 0o700)
	os.WriteFile(filepath.Join(home, "nats", "settings.json"), []byte("{nope"), 0o600)
	if _, err := New(Config{Home: home}); err == nil || !strings.Contains(err.Error(), "settings.json") || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("err = %v", err)
	}
}

func TestParseURLs(t *testing.T) {
	got := ParseURLs("nats://a:1,nats://b:2 nats://c:3,,")
	if strings.Join(got, "|") != "nats://a:1|nats://b:2|nats://c:3" {
		t.Errorf("got %q", got)
	}
	if ParseURLs("") != nil {
		t.Error("empty gave URLs")
	}
}
