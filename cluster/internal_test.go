package cluster

import (
	"net"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	any3000 := &net.TCPAddr{IP: net.IPv6unspecified, Port: 3000}
	lo3001 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3001}
	sockA := &net.UnixAddr{Name: "/run/a.sock", Net: "unix"}
	tests := []struct {
		network, address string
		addrs            []net.Addr
		names            []string
		want             int
	}{
		{"tcp", ":3000", []net.Addr{any3000}, []string{"3000"}, 0},
		{"tcp", "0.0.0.0:3000", []net.Addr{any3000, lo3001}, []string{"", ""}, 0},
		{"tcp", "127.0.0.1:3000", []net.Addr{lo3001, any3000}, []string{"", ""}, 1},
		{"tcp", "127.0.0.1:3001", []net.Addr{any3000, lo3001}, []string{"", ""}, 1},
		{"tcp", "localhost:3001", []net.Addr{any3000, lo3001}, []string{"", ""}, 1},
		{"tcp", "10.0.0.1:3001", []net.Addr{any3000, lo3001}, []string{"", ""}, -1},
		{"tcp", ":3002", []net.Addr{any3000, lo3001}, []string{"", ""}, -1},
		{"tcp", "web", []net.Addr{any3000, lo3001}, []string{"api", "web"}, 1},
		{"tcp", ":http", []net.Addr{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, lo3001}, nil, 0},
		// The only candidate is used whatever the address: an app with a
		// default port still serves on the one kin was given.
		{"tcp", ":8080", []net.Addr{any3000}, nil, 0},
		{"tcp", ":0", []net.Addr{any3000}, nil, 0},
		{"tcp", ":0", []net.Addr{any3000, lo3001}, nil, -1},
		{"tcp", ":3000", nil, nil, -1},
		{"unix", "/run/a.sock", []net.Addr{&net.UnixAddr{Name: "/run/b.sock"}, sockA}, nil, 1},
		{"unix", "/run/c.sock", []net.Addr{&net.UnixAddr{Name: "/run/b.sock"}, sockA}, nil, -1},
	}
	for _, tt := range tests {
		names := tt.names
		if names == nil {
			names = make([]string, len(tt.addrs))
		}
		if got := match(tt.network, tt.address, tt.addrs, names); got != tt.want {
			t.Errorf("match(%q, %q, %v, %q) = %d, want %d", tt.network, tt.address, tt.addrs, names, got, tt.want)
		}
	}
}

func TestSameNetwork(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		want, have string
		ok         bool
	}{
		{"tcp", "tcp", true}, {"tcp4", "tcp", true}, {"tcp6", "tcp", true},
		{"unix", "unix", true}, {"tcp", "unix", false}, {"unix", "tcp", false},
		{"udp", "tcp", false}, {"unixpacket", "unix", false},
	} {
		if got := sameNetwork(tt.want, tt.have); got != tt.ok {
			t.Errorf("sameNetwork(%q, %q) = %v", tt.want, tt.have, got)
		}
	}
}

func TestNodeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct{ opts, path, want string }{
		{"", "/k/p.js", "--require /k/p.js"},
		{"  ", "/k/p.js", "--require /k/p.js"},
		{"--max-old-space-size=100", "/k/p.js", "--require /k/p.js --max-old-space-size=100"},
		{"", "/a b/p.js", `--require "/a b/p.js"`},
		{"", `/a"b\c/p.js`, `--require "/a\"b\\c/p.js"`},
		{"--require /k/p.js --inspect", "/k/p.js", "--require /k/p.js --inspect"},
		{`-r "/a b/p.js"`, "/a b/p.js", `-r "/a b/p.js"`},
		{"--require=/k/p.js", "/k/p.js", "--require=/k/p.js"},
		{"--require /k/other.js", "/k/p.js", "--require /k/p.js --require /k/other.js"},
	}
	for _, tt := range tests {
		if got := NodeOptions(tt.opts, tt.path); got != tt.want {
			t.Errorf("NodeOptions(%q, %q) = %q, want %q", tt.opts, tt.path, got, tt.want)
		}
	}
}

func TestSplitNodeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a  b", []string{"a", "b"}},
		{`--require "/a b/c\"d\\e.js" -x`, []string{"--require", `/a b/c"d\e.js`, "-x"}},
		{`""`, []string{""}},
		{`a\b`, []string{`a\b`}}, // a backslash escapes only inside quotes
	}
	for _, tt := range tests {
		got := splitNodeOptions(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitNodeOptions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// What NodeOptions writes reads back as the path.
	for _, p := range []string{"/plain.js", "/a b.js", `/q"uote.js`, `/back\slash.js`, "/tab\t.js", "/it's.js"} {
		args := splitNodeOptions(NodeOptions("--x", p))
		if len(args) != 3 || args[0] != "--require" || args[1] != p || args[2] != "--x" {
			t.Errorf("round trip of %q: %q", p, args)
		}
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "web", "3000", "app.sock", strings.Repeat("x", 255)} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a:b", "a b", "é", "tab\t", strings.Repeat("x", 256)} {
		if err := checkName(bad); err == nil || !strings.HasPrefix(err.Error(), "cluster: ") {
			t.Errorf("checkName(%q) = %v, want a cluster: error", bad, err)
		}
	}
}
