// Package atomicfile writes files so that a reader, or a process that
// crashes mid-write, never leaves or sees half a file: through a temporary
// file in the same directory, fsynced, then renamed into place.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes b to path with mode (the mode of a new file and of a
// replaced one alike).
func Write(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
