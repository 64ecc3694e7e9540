package ipc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Environment variables that tell a child where its channel is. kin sets the
// KIN_ pair for every child and the NODE_ pair for JSON channels, so that a
// Node child's process.send works; a Node parent sets only the NODE_ pair.
const (
	EnvFD        = "KIN_CHANNEL_FD"
	EnvCodec     = "KIN_CHANNEL_CODEC"
	EnvNodeFD    = "NODE_CHANNEL_FD"
	EnvNodeMode  = "NODE_CHANNEL_SERIALIZATION_MODE"
	EnvNodeUnqID = "NODE_UNIQUE_ID"
)

// ErrNoChannel is returned by FromEnv when the process was not started with a
// channel.
var ErrNoChannel = errors.New("ipc: no channel: neither KIN_CHANNEL_FD nor NODE_CHANNEL_FD is set (start this program with kin, or with child_process.fork from Node)")

// FromEnv returns the channel this process inherited from its parent: kin's
// KIN_CHANNEL_FD and KIN_CHANNEL_CODEC, or Node's NODE_CHANNEL_FD (JSON
// serialization only). It removes those variables from the environment and
// marks the descriptor close-on-exec, so that grandchildren do not inherit
// the channel. cfg.Codec is replaced by the codec the parent chose. When
// both are set and disagree, NODE_CHANNEL_FD wins: the KIN_ variables were
// inherited through a Node process, which removes only its own.
func FromEnv(cfg Config) (*Channel, error) {
	fdStr, codecStr := os.Getenv(EnvFD), os.Getenv(EnvCodec)
	from := EnvFD
	// A Node parent sets only NODE_CHANNEL_FD, and Node removes only its own
	// variables from the environment: KIN_ ones next to a different
	// NODE_CHANNEL_FD are stale, inherited from a grandparent.
	if nodeFD := os.Getenv(EnvNodeFD); nodeFD != "" && nodeFD != fdStr {
		fdStr = ""
	}
	if fdStr == "" {
		fdStr, from = os.Getenv(EnvNodeFD), EnvNodeFD
		switch mode := os.Getenv(EnvNodeMode); mode {
		case "", "json":
		case "advanced":
			return nil, fmt.Errorf("ipc: the parent uses Node's advanced serialization, which kin does not speak: fork this program with {serialization: 'json'} (the default)")
		default:
			return nil, fmt.Errorf("ipc: unknown %s=%q", EnvNodeMode, mode)
		}
		codecStr = ""
	}
	for _, k := range []string{EnvFD, EnvCodec, EnvNodeFD, EnvNodeMode} {
		os.Unsetenv(k)
	}
	if fdStr == "" {
		return nil, ErrNoChannel
	}
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("ipc: %s=%q is not a file descriptor number", from, fdStr)
	}
	codec, err := ParseCodec(codecStr)
	if err != nil {
		return nil, fmt.Errorf("ipc: %s: %w", EnvCodec, err)
	}
	if _, err := fcntlGetfd(fd); err != nil {
		return nil, fmt.Errorf("ipc: %s=%d but descriptor %d is not open", from, fd, fd)
	}
	syscall.CloseOnExec(fd)
	cfg.Codec = codec
	return FromFile(os.NewFile(uintptr(fd), "ipc-channel"), cfg)
}
