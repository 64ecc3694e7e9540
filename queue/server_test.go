package queue_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

func TestParseSync(t *testing.T) {
	for _, c := range []struct {
		in       string
		always   bool
		interval time.Duration
		ok       bool
	}{
		{"", false, 100 * time.Millisecond, true},
		{"always", true, 100 * time.Millisecond, true},
		{"1s", false, time.Second, true},
		{"0s", false, 0, false},
		{"-1s", false, 0, false},
		{"sometimes", false, 0, false},
	} {
		always, interval, err := queue.ParseSync(c.in)
		if (err == nil) != c.ok || err == nil && (always != c.always || interval != c.interval) {
			t.Errorf("ParseSync(%q) = %v, %v, %v", c.in, always, interval, err)
		}
	}
}

func TestServerCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, queue.ServerConfig{Dir: dir})
	cred := s.Credentials()
	fi, err := os.Stat(filepath.Join(dir, queue.CredentialsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	if onDisk, err := queue.ReadCredentials(dir); err != nil || onDisk != cred || len(cred.Password) < 32 {
		t.Fatalf("stored %+v %v, server has %+v", onDisk, err, cred)
	}
	// Wrong credentials are refused.
	if _, err := queue.Connect(ctxT(t), queue.ConnectConfig{URLs: []string{s.ClientURL()}, User: "kin", Password: "guess"}); err == nil {
		t.Error("wrong password accepted")
	}
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Errorf("URL %s", s.ClientURL())
	}
	name := s.Name()
	s.Shutdown()
	s.Shutdown() // idempotent
	// The same directory keeps its credentials and its name.
	s2 := startServer(t, queue.ServerConfig{Dir: dir})
	if s2.Credentials() != cred || s2.Name() != name {
		t.Errorf("restart: %+v %s, was %+v %s", s2.Credentials(), s2.Name(), cred, name)
	}
	// Given credentials are used as they are.
	s3 := startServer(t, queue.ServerConfig{User: "u", Password: "p"})
	c, err := queue.Connect(ctxT(t), queue.ConnectConfig{URLs: []string{s3.ClientURL()}, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestServerErrorsAndLog(t *testing.T) {
	t.Parallel()
	if _, err := queue.StartServer(queue.ServerConfig{}); err == nil {
		t.Error("no Dir accepted")
	}
	if _, err := queue.StartServer(queue.ServerConfig{Dir: t.TempDir(), Sync: "often"}); err == nil || !strings.HasPrefix(err.Error(), "queue: ") {
		t.Errorf("bad sync: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := queue.StartServer(queue.ServerConfig{Dir: filepath.Join(file, "sub")}); err == nil {
		t.Error("a Dir under a file accepted")
	}
	var log kintest.SyncBuffer
	s := startServer(t, queue.ServerConfig{Log: &log})
	s.Shutdown()
	if !strings.Contains(log.String(), "Server is ready") {
		t.Errorf("log: %q", log.String())
	}
}
