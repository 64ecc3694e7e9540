package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Files returns the files that make up the log at path, oldest first: the
// rotated files path.N from the highest N down to path.1, then path itself.
// Files that do not exist are left out, so a log nothing was written to
// yet is an empty list and no error.
func Files(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		out = append(out, rotated[i].name)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, wrapErr(path, err)
	}
	return out, nil
}

// Truncate empties the log at path, as `kin flush` (and PM2's `pm2 flush`)
// does, for a log no Writer has open: path is cut to zero bytes in place
// (Follow notices when it sees the file shorter than what it has read) and
// the rotated files are removed. A missing path is not an error. To flush a
// log that a Writer of this process has open, call the Writer's Truncate.
func Truncate(path string) error {
	err := os.Truncate(path, 0)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		err = wrapErr(path, err)
	}
	return errors.Join(err, removeRotated(path, 1))
}

type rotatedFile struct {
	name string
	n    int
}

// rotatedFiles lists path.N for N ≥ 1, by increasing N (newest first).
func rotatedFiles(path string) ([]rotatedFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapErr(path, err)
	}
	var out []rotatedFile
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || suffix == "" || suffix[0] == '0' || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue
		}
		out = append(out, rotatedFile{name: rotatedName(path, n), n: n})
	}
	slices.SortFunc(out, func(a, b rotatedFile) int { return a.n - b.n })
	return out, nil
}

func rotatedName(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}

// removeRotated removes path.N for every N ≥ from.
func removeRotated(path string, from int) error {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rotated {
		if r.n < from {
			continue
		}
		if err := os.Remove(r.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, wrapErr(r.name, err))
		}
	}
	return errors.Join(errs...)
}

// wrapErr prefixes err with the package and makes sure it names path: the
// os package's errors already do.
func wrapErr(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		return fmt.Errorf("logfile: %w", err)
	}
	return fmt.Errorf("logfile: %s: %w", path, err)
}
