package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	nodeclient "github.com/kinproc/kin/clients/node"
	"github.com/kinproc/kin/proc"
)

// Environment variables read by the Node preload.
const (
	// EnvNodeOptions is Node's own variable for extra command-line options.
	EnvNodeOptions = "NODE_OPTIONS"
	// EnvIdleGrace is how long, in milliseconds, a draining Node app keeps
	// a keep-alive connection that has no request in flight before closing
	// it; unset means 1000.
	EnvIdleGrace = "KIN_IDLE_GRACE_MS"
	// EnvDrainTimeout bounds a Node app's drain, in milliseconds: the
	// connections still open then are closed and the app exits; unset means
	// 10000.
	EnvDrainTimeout = "KIN_DRAIN_TIMEOUT_MS"
)

// NodePreload returns the source of kin's Node preload
// (clients/node/preload.js).
func NodePreload() []byte { return bytes.Clone(nodeclient.Preload) }

// WriteNodePreload writes the Node preload into dir, creating dir if needed,
// and returns its path. The file name holds a hash of the content
// (kin-preload-<hash>.js), so that a running app never sees its preload
// change and a newer kin writes a new file beside the old one. An existing
// file with the right content is left alone; anything else is replaced
// atomically (a temporary file renamed over it), so a Node process starting
// meanwhile reads either nothing or the whole file.
func WriteNodePreload(dir string) (string, error) {
	src := nodeclient.Preload
	sum := sha256.Sum256(src)
	path := filepath.Join(dir, "kin-preload-"+hex.EncodeToString(sum[:8])+".js")
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, src) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cluster: write node preload: %w", err)
	}
	f, err := os.CreateTemp(dir, ".kin-preload-*.js")
	if err != nil {
		return "", fmt.Errorf("cluster: write node preload: %w", err)
	}
	_, err = f.Write(src)
	if err == nil {
		err = f.Chmod(0o644) // apps may run as another user
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("cluster: write node preload: %w", err)
	}
	return path, nil
}

// NodeOptions returns the NODE_OPTIONS value opts with "--require path" put
// in front, the path quoted as Node's parser of NODE_OPTIONS needs (double
// quotes, with '\' and '"' escaped by '\') when it holds a space, a quote
// or a backslash. The options already in opts are kept; opts is returned
// unchanged when it already requires path.
func NodeOptions(opts, path string) string {
	q := quoteNodeOption(path)
	if nodeOptionsRequire(opts, path) {
		return opts
	}
	if strings.TrimSpace(opts) == "" {
		return "--require " + q
	}
	return "--require " + q + " " + opts
}

// UseNodePreload makes the Node program cmd runs load the preload at path
// (see WriteNodePreload), by adding it to NODE_OPTIONS in cmd.Env (a nil Env
// starts from this process's environment). Child Node processes of the app
// inherit NODE_OPTIONS too; the preload does nothing in them unless they
// also inherited the sockets.
func UseNodePreload(cmd *proc.Cmd, path string) error {
	if cmd == nil {
		return errors.New("cluster: use node preload: nil Cmd")
	}
	if path == "" {
		return errors.New("cluster: use node preload: empty path")
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	old := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, EnvNodeOptions+"="); ok {
			old = v // the last one wins, as in getenv
		}
	}
	env = proc.WithoutVars(env, EnvNodeOptions)
	cmd.Env = append(env, EnvNodeOptions+"="+NodeOptions(old, path))
	return nil
}

// quoteNodeOption quotes s for NODE_OPTIONS when it needs it.
func quoteNodeOption(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"\\'") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// nodeOptionsRequire reports whether opts already has --require path (or -r).
func nodeOptionsRequire(opts, path string) bool {
	args := splitNodeOptions(opts)
	for i, a := range args {
		switch {
		case (a == "--require" || a == "-r") && i+1 < len(args) && args[i+1] == path:
			return true
		case a == "--require="+path:
			return true
		}
	}
	return false
}

// splitNodeOptions splits NODE_OPTIONS as Node does: on spaces outside
// double quotes, a backslash inside quotes escaping the next character.
func splitNodeOptions(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote = !inQuote
			started = true
		case c == ' ' && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}
