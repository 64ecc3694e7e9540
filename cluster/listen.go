package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// inherited is one listening socket this process inherited.
type inherited struct {
	fd   int
	name string
	ln   net.Listener // nil when err is set
	err  error
}

var (
	inheritOnce sync.Once
	inheritMu   sync.Mutex
	pool        []*inherited // not yet taken by Listen or Listeners
)

// loadInherited reads the systemd variables once, as sd_listen_fds(1) does:
// the fds are used only when LISTEN_PID is this process, the variables are
// removed from the environment either way (with KIN_LISTEN) so that children
// do not see them, and the descriptors are made close-on-exec.
func loadInherited() {
	inheritOnce.Do(func() {
		pidStr, fdsStr, namesStr := os.Getenv(EnvPID), os.Getenv(EnvFDs), os.Getenv(EnvFDNames)
		for _, k := range []string{EnvPID, EnvFDs, EnvFDNames, EnvListen} {
			os.Unsetenv(k)
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid != os.Getpid() {
			return
		}
		n, err := strconv.Atoi(fdsStr)
		if err != nil || n <= 0 {
			return
		}
		var names []string
		if namesStr != "" {
			names = strings.Split(namesStr, ":")
		}
		if len(names) != n {
			names = nil
		}
		for i := 0; i < n; i++ {
			fd := 3 + i
			in := &inherited{fd: fd}
			if names != nil {
				in.name = names[i]
			}
			syscall.CloseOnExec(fd)
			f := os.NewFile(uintptr(fd), "listen:"+in.name)
			ln, err := net.FileListener(f) // a duplicate: f can go
			f.Close()
			if err != nil {
				in.err = fmt.Errorf("cluster: inherited fd %d (%s) is not a listening socket: %w", fd, in.name, err)
			}
			in.ln = ln
			pool = append(pool, in)
		}
	})
}

// Listen returns a listener on network ("tcp", "tcp4", "tcp6" or "unix")
// and address: a socket this process inherited (LISTEN_FDS, with LISTEN_PID
// equal to its pid) when one fits, and net.Listen(network, address)
// otherwise, so that the same program runs under kin, under systemd, and on
// its own. An inherited socket fits when its LISTEN_FDNAMES name is address,
// when its address matches (same port, and same IP unless either side is
// unspecified; same path for unix), or when it is the only inherited socket
// of that network left. Each inherited socket is returned once; the
// variables are removed from the environment and the descriptors made
// close-on-exec at the first call of Listen or Listeners.
func Listen(network, address string) (net.Listener, error) {
	loadInherited()
	inheritMu.Lock()
	ln := take(network, address)
	inheritMu.Unlock()
	if ln != nil {
		return ln, nil
	}
	return net.Listen(network, address)
}

// take removes the inherited listener that fits network and address from
// the pool and returns it, or nil. inheritMu is held.
func take(network, address string) net.Listener {
	var addrs []net.Addr
	var names []string
	var idx []int
	for i, in := range pool {
		if in.ln == nil || !sameNetwork(network, in.ln.Addr().Network()) {
			continue
		}
		addrs = append(addrs, in.ln.Addr())
		names = append(names, in.name)
		idx = append(idx, i)
	}
	i := match(network, address, addrs, names)
	if i < 0 {
		return nil
	}
	in := pool[idx[i]]
	pool = append(pool[:idx[i]], pool[idx[i]+1:]...)
	return in.ln
}

// match returns the index in addrs of the listener that fits address, by
// name, then by address, then as the only candidate; or -1.
func match(network, address string, addrs []net.Addr, names []string) int {
	for i, n := range names {
		if n != "" && n == address {
			return i
		}
	}
	for i, a := range addrs {
		if addrMatches(network, address, a) {
			return i
		}
	}
	if len(addrs) == 1 {
		return 0
	}
	return -1
}

// sameNetwork reports whether a listener of network have (as net.Addr
// names it: "tcp" or "unix") can serve a Listen on network want.
func sameNetwork(want, have string) bool {
	switch want {
	case "tcp", "tcp4", "tcp6":
		return have == "tcp"
	case "unix":
		return have == "unix"
	}
	return false
}

// addrMatches reports whether address, given to Listen for network, names
// the bound address a.
func addrMatches(network, address string, a net.Addr) bool {
	switch a := a.(type) {
	case *net.UnixAddr:
		if address == "" {
			return false
		}
		want, err1 := filepath.Abs(address)
		have, err2 := filepath.Abs(a.Name)
		return err1 == nil && err2 == nil && want == have
	case *net.TCPAddr:
		host, portStr, err := net.SplitHostPort(address)
		if err != nil {
			return false
		}
		port, err := net.LookupPort(network, portStr)
		if err != nil || port == 0 || port != a.Port {
			return false
		}
		if host == "" || a.IP.IsUnspecified() {
			return true
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return host == "localhost" && a.IP.IsLoopback()
		}
		return ip.IsUnspecified() || ip.Equal(a.IP)
	}
	return false
}

// Listeners returns every inherited listening socket not yet taken by
// Listen, in descriptor order, and takes them. It returns none, and no
// error, when the process inherited none (or they were for another pid);
// an inherited descriptor that is not a listening socket is an error (the
// others are still returned).
func Listeners() ([]net.Listener, error) {
	loadInherited()
	inheritMu.Lock()
	defer inheritMu.Unlock()
	var out []net.Listener
	var firstErr error
	for _, in := range pool {
		if in.err != nil {
			if firstErr == nil {
				firstErr = in.err
			}
			continue
		}
		out = append(out, in.ln)
	}
	pool = nil
	return out, firstErr
}
