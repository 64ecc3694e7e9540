package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/kinproc/kin/internal/atomicfile"
)

// savedApp is one app in state.json and dump.json.
type savedApp struct {
	Spec    AppSpec `json:"spec"`
	Running bool    `json:"running"`
}

type savedState struct {
	Version int        `json:"version"`
	Apps    []savedApp `json:"apps"`
}

func specEqual(a, b *AppSpec) bool { return reflect.DeepEqual(a, b) }

func (s *Server) snapshotLocked() savedState {
	st := savedState{Version: 1}
	for _, a := range s.sortedAppsLocked() {
		st.Apps = append(st.Apps, savedApp{Spec: *a.spec, Running: a.want})
	}
	return st
}

// saveState rewrites state.json; errors are logged, not returned: the apps
// run on whether or not their description reached the disk.
func (s *Server) saveState() {
	if s.cfg.Home == "" {
		return
	}
	s.mu.Lock()
	st := s.snapshotLocked()
	s.mu.Unlock()
	if err := writeJSONAtomic(filepath.Join(s.cfg.Home, "state.json"), st); err != nil {
		s.logf("save state: %v", err)
	}
}

// Save writes the apps and whether each is running to dump.json, for
// Resurrect (after a reboot, or after the daemon was killed).
func (s *Server) Save() (string, error) {
	if s.cfg.Home == "" {
		return "", fmt.Errorf("supervisor: save: no home directory configured")
	}
	s.mu.Lock()
	st := s.snapshotLocked()
	s.mu.Unlock()
	path := filepath.Join(s.cfg.Home, "dump.json")
	if err := writeJSONAtomic(path, st); err != nil {
		return "", fmt.Errorf("supervisor: save: %w", err)
	}
	return path, nil
}

// Resurrect starts the apps saved by Save that were running, and lists the
// stopped ones as stopped. Apps that already exist are left alone.
func (s *Server) Resurrect(ctx context.Context) ([]InstanceInfo, error) {
	if s.cfg.Home == "" {
		return nil, fmt.Errorf("supervisor: resurrect: no home directory configured")
	}
	path := filepath.Join(s.cfg.Home, "dump.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("supervisor: resurrect: nothing saved (%s does not exist): run kin save first", path)
		}
		return nil, fmt.Errorf("supervisor: resurrect: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("supervisor: resurrect: %s: %w", path, err)
	}
	// Every saved app is added stopped, in the saved order (which List
	// keeps); then the running ones are started in dependency order.
	var run []AppSpec
	for _, sa := range st.Apps {
		spec := sa.Spec
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("supervisor: resurrect: %s: %w", path, err)
		}
		s.mu.Lock()
		_, exists := s.apps[spec.Name]
		s.mu.Unlock()
		if exists {
			continue
		}
		s.opMu.Lock()
		err := s.addApp(&spec, false)
		s.opMu.Unlock()
		if err != nil {
			return nil, err
		}
		if sa.Running {
			run = append(run, spec)
		}
	}
	infos, err := s.StartApps(ctx, run, StartOptions{})
	if err != nil {
		return infos, fmt.Errorf("supervisor: resurrect: %w", err)
	}
	return s.List(), nil
}

// writeJSONAtomic writes v to path through a temporary file and a rename,
// so that a reader never sees half a file.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}
