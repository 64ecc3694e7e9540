package supervisor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/robfig/cron/v3"
)

// watchDebounce is how long a burst of file changes is collected before the
// app is restarted once.
const watchDebounce = 250 * time.Millisecond

// cronParser reads five-field expressions and descriptors (@every 1h,
// @daily…), as PM2's cron_restart does.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron checks a cron expression.
func ParseCron(expr string) error {
	if _, err := cronParser.Parse(expr); err != nil {
		return fmt.Errorf("cron %q: %v", expr, err)
	}
	return nil
}

// schedule restarts an app on a cron schedule and when watched files change.
// Its goroutine is owned by the server; stop ends it.
type schedule struct {
	quit chan struct{}
	done chan struct{}
}

func (sc *schedule) stop() {
	close(sc.quit)
	<-sc.done
}

// startSchedule starts the app's schedule if its spec has Cron or Watch.
func (s *Server) startSchedule(a *app) {
	spec := a.specSnapshot()
	if spec.Cron == "" && len(spec.Watch) == 0 {
		return
	}
	var sched cron.Schedule
	if spec.Cron != "" {
		var err error
		if sched, err = cronParser.Parse(spec.Cron); err != nil {
			s.logf("app %s: cron %q: %v", a.name, spec.Cron, err)
		}
	}
	var w *fsnotify.Watcher
	if len(spec.Watch) > 0 {
		var err error
		if w, err = s.watch(spec); err != nil {
			s.logf("app %s: watch: %v", a.name, err)
			w = nil
		}
	}
	if sched == nil && w == nil {
		return
	}
	sc := &schedule{quit: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	a.sched = sc
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(sc.done)
		if w != nil {
			defer w.Close()
		}
		var cronC <-chan time.Time
		var cronT *time.Timer
		arm := func() {
			if sched == nil {
				return
			}
			d := time.Until(sched.Next(time.Now()))
			if cronT == nil {
				cronT = time.NewTimer(d)
			} else {
				cronT.Reset(d)
			}
			cronC = cronT.C
		}
		arm()
		defer func() {
			if cronT != nil {
				cronT.Stop()
			}
		}()
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w != nil {
			events, errs = w.Events, w.Errors
		}
		var debounce *time.Timer
		var debounceC <-chan time.Time
		changed := ""
		for {
			select {
			case <-sc.quit:
				if debounce != nil {
					debounce.Stop()
				}
				return
			case <-s.quit:
				return
			case <-cronC:
				s.goOwned(func() { s.scheduledRestart(a, sc, "cron "+spec.Cron) })
				arm()
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if s.ignored(spec, ev.Name) {
					continue
				}
				if ev.Has(fsnotify.Create) {
					// A new directory is watched too.
					if fi, err := statDir(ev.Name); err == nil && fi {
						s.addWatchTree(w, spec, ev.Name)
					}
				}
				changed = ev.Name
				if debounce == nil {
					debounce = time.NewTimer(watchDebounce)
				} else {
					debounce.Reset(watchDebounce)
				}
				debounceC = debounce.C
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				s.logf("app %s: watch: %v", a.name, err)
			case <-debounceC:
				debounceC = nil
				rel, err := filepath.Rel(spec.Cwd, changed)
				if err != nil {
					rel = changed
				}
				s.goOwned(func() { s.scheduledRestart(a, sc, "watch: "+rel+" changed") })
			}
		}
	}()
}

// scheduledRestart restarts (or, for an app with a port, reloads) a for a
// cron or watch event, unless the app was stopped, deleted or given a new
// schedule in the meantime.
func (s *Server) scheduledRestart(a *app, sc *schedule, cause string) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	current := s.apps[a.name] == a && a.want && a.sched == sc && !s.closed
	port := a.spec.Port
	s.mu.Unlock()
	if !current {
		return
	}
	s.logf("app %s: %s: restarting", a.name, cause)
	ctx := context.Background()
	if port > 0 {
		if err := s.reloadApp(ctx, a); err != nil {
			s.logf("app %s: reload for %s: %v", a.name, cause, err)
		}
		return
	}
	if err := s.eachSlot(ctx, a, slotCmd{kind: cmdRestart, cause: cause}, false); err != nil {
		s.logf("app %s: restart for %s: %v", a.name, cause, err)
	}
}

func (s *Server) stopSchedule(a *app) {
	s.mu.Lock()
	sc := a.sched
	a.sched = nil
	s.mu.Unlock()
	if sc != nil {
		sc.stop()
	}
}

func (s *Server) restartSchedule(a *app) {
	s.stopSchedule(a)
	s.startSchedule(a)
}

// watch returns a watcher on the spec's Watch paths (directories are
// watched with everything under them).
func (s *Server) watch(spec *AppSpec) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, p := range spec.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(spec.Cwd, p)
		}
		isDir, err := statDir(p)
		if err != nil {
			w.Close()
			return nil, err
		}
		if isDir {
			s.addWatchTree(w, spec, p)
		} else if err := w.Add(p); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

func (s *Server) addWatchTree(w *fsnotify.Watcher, spec *AppSpec, root string) {
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if path != root && s.ignored(spec, path) {
			return filepath.SkipDir
		}
		w.Add(path)
		return nil
	})
}

// ignored reports whether a change to path is not a reason to restart:
// node_modules, .git, kin's own home (logs), and the spec's WatchIgnore
// patterns.
func (s *Server) ignored(spec *AppSpec, path string) bool {
	if s.cfg.Home != "" && strings.HasPrefix(path, s.cfg.Home+string(filepath.Separator)) {
		return true
	}
	rel, err := filepath.Rel(spec.Cwd, path)
	if err != nil {
		rel = path
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "node_modules" || part == ".git" {
			return true
		}
	}
	base := filepath.Base(path)
	for _, pat := range spec.WatchIgnore {
		if ok, _ := filepath.Match(pat, base); ok {
			return true
		}
		if ok, _ := filepath.Match(pat, rel); ok {
			return true
		}
		if strings.HasPrefix(rel, strings.TrimSuffix(pat, "/")+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func statDir(p string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}
