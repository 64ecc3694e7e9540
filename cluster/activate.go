package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kinproc/kin/proc"
)

// Environment variables set by Activate. The LISTEN_ ones are systemd's
// socket-activation convention (sd_listen_fds(3)): the sockets are fds 3,
// 4, … in order.
const (
	// EnvFDs holds how many sockets were passed, starting at fd 3.
	EnvFDs = "LISTEN_FDS"
	// EnvPID holds the pid of the process the sockets are for; a program
	// ignores them when it is not its own (they were inherited from a
	// parent).
	EnvPID = "LISTEN_PID"
	// EnvFDNames holds the sockets' names, separated by ':'.
	EnvFDNames = "LISTEN_FDNAMES"
	// EnvListen describes the sockets for kin's Node preload: a JSON array
	// with one object per socket,
	// {"fd":3,"name":"3000","network":"tcp","address":"[::]:3000","port":3000,"inode":"12345"},
	// "network" being "tcp" or "unix" (then "address" is the path and there
	// is no port). "inode" is the socket's inode number (a decimal string),
	// by which the preload checks that the descriptor is still that socket
	// rather than trusting LISTEN_PID, which a wrapper process would break.
	EnvListen = "KIN_LISTEN"
	// EnvPort is the conventional port variable; Activate sets it when there
	// is exactly one TCP socket and the environment has no PORT, so that
	// apps doing listen(process.env.PORT) pick the right port.
	EnvPort = "PORT"
)

// trampoline is the /bin/sh script through which Activate runs a program: it
// exports its own pid as LISTEN_PID, then exec replaces the shell with the
// program under the same pid ($0 is the program, "$@" its arguments).
const trampoline = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// shell runs the trampoline. A variable for tests.
var shell = "/bin/sh"

// listenEntry is one element of EnvListen.
type listenEntry struct {
	FD      int    `json:"fd"`
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	Port    int    `json:"port,omitempty"`
	Inode   string `json:"inode"`
}

// Activate makes cmd, not yet started, inherit sockets the systemd way:
//
//   - the sockets are put in front of cmd.ExtraFiles, so that they become
//     fds 3, 4, … in the child (files already in ExtraFiles, and the IPC
//     channel, which proc puts after them, move up accordingly);
//   - cmd.Env gets LISTEN_FDS, LISTEN_FDNAMES and KIN_LISTEN (replacing any
//     inherited ones), and PORT when there is exactly one TCP socket and
//     PORT is not set; a nil Env starts from this process's environment;
//   - cmd then runs through a /bin/sh trampoline that sets LISTEN_PID to the
//     child's pid and execs the program under that same pid. cmd.Path and
//     cmd.Args are rewritten for it: the program is looked up in $PATH now,
//     as Start would, and its argv[0] becomes that path (a custom Args[0]
//     is lost).
//
// The sockets must stay open until cmd has started (see Socket.Close).
// Activate returns an error, and leaves cmd unchanged, for a started or
// already activated cmd, no sockets, a closed or repeated socket, or a
// program that cannot be found.
func Activate(cmd *proc.Cmd, sockets ...*Socket) error {
	if cmd == nil {
		return errors.New("cluster: activate: nil Cmd")
	}
	if cmd.Process != nil {
		return fmt.Errorf("cluster: activate %s: already started", cmd)
	}
	if activated(cmd) {
		return fmt.Errorf("cluster: activate %s: already activated", cmd)
	}
	if len(sockets) == 0 {
		return fmt.Errorf("cluster: activate %s: no sockets", cmd)
	}
	path := cmd.Path
	if path == "" {
		return errors.New("cluster: activate: Cmd.Path is empty")
	}
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fmt.Errorf("cluster: activate: %w", err)
		}
		path = p
	}
	if !filepath.IsAbs(path) && !strings.HasPrefix(path, "./") && !strings.HasPrefix(path, "../") {
		path = "./" + path // so that exec takes it as a path, and never as an option
	}

	files := make([]*os.File, 0, len(sockets)+len(cmd.ExtraFiles))
	names := make([]string, 0, len(sockets))
	entries := make([]listenEntry, 0, len(sockets))
	tcp := 0
	port := 0
	seen := make(map[*Socket]bool, len(sockets))
	for i, s := range sockets {
		if s == nil {
			return fmt.Errorf("cluster: activate %s: socket %d is nil", cmd, i)
		}
		if seen[s] {
			return fmt.Errorf("cluster: activate %s: socket %s given twice", cmd, s)
		}
		seen[s] = true
		f := s.File()
		if f == nil {
			return fmt.Errorf("cluster: activate %s: %s: %w", cmd, s, ErrClosed)
		}
		fd := 3 + i
		files = append(files, f)
		names = append(names, s.name)
		e := listenEntry{FD: fd, Name: s.name, Network: s.network, Address: s.addr.String(), Inode: strconv.FormatUint(s.inode, 10)}
		if a, ok := s.addr.(*net.TCPAddr); ok {
			e.Port = a.Port
			tcp++
			port = a.Port
		}
		entries = append(entries, e)
	}
	desc, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("cluster: activate %s: %w", cmd, err)
	}

	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = proc.WithoutVars(env, EnvFDs, EnvPID, EnvFDNames, EnvListen)
	env = append(env,
		EnvFDs+"="+strconv.Itoa(len(sockets)),
		EnvFDNames+"="+strings.Join(names, ":"),
		EnvListen+"="+string(desc))
	if tcp == 1 && !hasVar(env, EnvPort) {
		env = append(env, EnvPort+"="+strconv.Itoa(port))
	}

	args := cmd.Args
	if len(args) == 0 {
		args = []string{cmd.Path}
	}
	cmd.Env = env
	cmd.ExtraFiles = append(files, cmd.ExtraFiles...)
	cmd.Args = append([]string{shell, "-c", trampoline, path}, args[1:]...)
	cmd.Path = shell
	return nil
}

// activated reports whether Activate already rewrote cmd.
func activated(cmd *proc.Cmd) bool {
	return cmd.Path == shell && len(cmd.Args) >= 3 && cmd.Args[1] == "-c" && cmd.Args[2] == trampoline
}

// hasVar reports whether env sets name.
func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
