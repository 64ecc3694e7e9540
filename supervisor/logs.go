package supervisor

import (
	"errors"
	"io"

	"github.com/kinproc/kin/supervisor/logfile"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// openLog returns a new input into the log file at path: one Writer per
// path, shared by the processes of an instance (the old and the new one
// during a reload each get their own Input, so their lines never mix).
func (s *Server) openLog(path string) (io.WriteCloser, error) {
	if path == "" {
		return discard{}, nil
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	w := s.logs[path]
	if w == nil {
		var err error
		w, err = logfile.Open(logfile.Config{
			Path: path, MaxSize: s.cfg.LogMaxSize, Keep: s.cfg.LogKeep,
			OnError: func(err error) { s.logger.Warn("log file", "err", err) },
		})
		if err != nil {
			return nil, err
		}
		s.logs[path] = w
	}
	return w.NewInput(), nil
}

// closeLogs closes the writers of paths (an app deleted), or of every path
// when paths is nil (shutdown).
func (s *Server) closeLogs(paths []string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if paths == nil {
		for p, w := range s.logs {
			w.Close()
			delete(s.logs, p)
		}
		return
	}
	for _, p := range paths {
		if w := s.logs[p]; w != nil {
			w.Close()
			delete(s.logs, p)
		}
	}
}

// FlushLogs empties the log files of the target's instances, and removes
// their rotated files (`kin flush`); it returns the files.
func (s *Server) FlushLogs(target string) ([]string, error) {
	paths, err := s.LogFiles(target)
	if err != nil {
		return nil, err
	}
	var errs []error
	s.logMu.Lock()
	defer s.logMu.Unlock()
	for _, p := range paths {
		if w := s.logs[p]; w != nil {
			errs = append(errs, w.Truncate())
		} else {
			errs = append(errs, logfile.Truncate(p))
		}
	}
	return paths, errors.Join(errs...)
}
