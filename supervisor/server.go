package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kinproc/kin/bus"
	"github.com/kinproc/kin/supervisor/logfile"
)

// Errors.
var (
	// ErrShutdown is returned by calls made while or after the server shuts down.
	ErrShutdown = errors.New("supervisor: shutting down")
	// ErrNotFound is returned for a name or id that matches no app or instance.
	ErrNotFound = errors.New("supervisor: no such app or instance")
)

// Config configures a Server. The zero value runs apps with no state on disk
// and discards their output.
type Config struct {
	// Home holds logs/ (instance logs), lib/ (kin's Node preload),
	// state.json (the apps, rewritten atomically on every change) and
	// dump.json (written by Save, read by Resurrect). Empty means none of
	// these: output is discarded and nothing is persisted.
	Home string
	// Logger receives the supervisor's own events; nil discards them.
	Logger *slog.Logger
	// SampleInterval is how often CPU and memory of every instance are read
	// (for List and MaxMemory); zero means 1 s.
	SampleInterval time.Duration
	// NoCgroups enforces AppSpec.MemoryLimit by sampling RSS every
	// SampleInterval instead of with a memory cgroup per instance; false
	// means a cgroup wherever this process may create one (see
	// proc.NewMemoryCgroup).
	NoCgroups bool
	// CPUs is what "max" instances means; zero means runtime.NumCPU().
	CPUs int
	// LogMaxSize and LogKeep bound each log file and how many rotated files
	// are kept; zero means 10 MiB and 5.
	LogMaxSize int64
	LogKeep    int
	// Bus gives apps the pub/sub bus: their {"kin":"publish"},
	// {"kin":"subscribe"} and {"kin":"unsubscribe"} channel messages are
	// carried out on the *bus.Bus it returns (docs/protocol.md §11.4). It
	// is called on an instance's channel reader when that run of the
	// instance first needs the bus, with a context that ends with the run;
	// the run keeps the Bus it got, and after an error the next bus message
	// calls again. So it may start the bus lazily, but must be safe for
	// concurrent use and should return the same Bus each time. The
	// supervisor never closes the Bus's connection; its apps'
	// subscriptions end before Shutdown returns. nil means no bus: bus
	// messages are answered with an error.
	Bus func(ctx context.Context) (*bus.Bus, error)
	// QueueWorker is the command line, without the queue's name, that runs
	// a queue consumer for apps with a Queue (the daemon passes its own
	// executable with "queue", "work"); such apps also get KIN_HOME. Nil
	// makes those apps fail to start with an error that says so.
	QueueWorker []string
}

// Server runs apps. Create it with New, then Start; Shutdown stops every app
// and returns when all are gone.
type Server struct {
	cfg    Config
	logger *slog.Logger

	// mu guards apps, order, nextID and every field of app and slot that
	// says it is guarded by Server.mu. Slot goroutines never hold it while
	// they wait for a process. Lock order: opMu, then mu.
	mu     sync.Mutex
	apps   map[string]*app
	nextID int
	closed bool
	stats  map[int]sample // by pid, from the sampler

	// opMu serialises operations that change the set of apps or slots
	// (start, delete, scale, reload), so that two clients cannot interleave
	// a reload with a scale.
	opMu sync.Mutex

	quit      chan struct{}
	ready     chan struct{}
	wg        sync.WaitGroup
	startOnce sync.Once
	shutOnce  sync.Once

	preloadMu   sync.Mutex
	preloadPath string

	logMu sync.Mutex
	logs  map[string]*logfile.Writer // by path
}

// New returns a Server for cfg; nothing runs until Start.
func New(cfg Config) (*Server, error) {
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = time.Second
	}
	if cfg.Home != "" {
		if err := os.MkdirAll(filepath.Join(cfg.Home, "logs"), 0o700); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{
		cfg:    cfg,
		logger: logger,
		apps:   map[string]*app{},
		stats:  map[int]sample{},
		logs:   map[string]*logfile.Writer{},
		quit:   make(chan struct{}),
		ready:  make(chan struct{}),
	}, nil
}

// Start starts the server's own goroutines (the sampler); it does not block.
func (s *Server) Start() error {
	s.startOnce.Do(func() {
		s.wg.Add(1)
		go s.sampleLoop()
		close(s.ready)
	})
	return nil
}

// Ready returns a channel closed once Start has run.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Shutdown stops every instance (gracefully, each within its kill timeout)
// and the server's goroutines, and returns when they are all gone or ctx
// ends. It is idempotent. Listening sockets are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.closeLogs(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		if a.sock != nil {
			a.sock.Close()
			a.sock = nil
		}
	}
	return nil
}

// goOwned runs f on a goroutine the server waits for at Shutdown.
func (s *Server) goOwned(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) logf(format string, args ...any) {
	s.logger.Info(fmt.Sprintf(format, args...))
}

// StartOptions says how StartApps starts apps. The zero value returns once
// the instances are started and keeps existing apps' CallerEnv.
type StartOptions struct {
	// Wait makes StartApps return only when every instance is online (or
	// has failed): the zero value returns once the instances are started.
	Wait bool
	// UpdateEnv makes an existing app take the new spec's CallerEnv; by
	// default it keeps its own.
	UpdateEnv bool
}

// StartApps starts the apps in specs, in dependency order (an app waits for
// the apps in its DependsOn to be online). An app that already exists with
// the same spec is started if stopped; one whose spec changed gets the new
// spec (its Env replaced, not merged) and is reloaded if it has a Port,
// restarted otherwise. Every spec is validated before anything changes.
func (s *Server) StartApps(ctx context.Context, specs []AppSpec, opts StartOptions) ([]InstanceInfo, error) {
	order, err := startOrder(specs)
	if err != nil {
		return nil, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	var names []string
	for _, spec := range order {
		spec := spec
		if err := s.waitDeps(ctx, &spec); err != nil {
			return s.listNames(names), err
		}
		if err := s.startApp(ctx, &spec, opts); err != nil {
			return s.listNames(names), err
		}
		names = append(names, spec.Name)
		if opts.Wait || s.isDependency(spec.Name, order) {
			if err := s.waitApp(ctx, spec.Name); err != nil {
				s.saveState()
				return s.listNames(names), err
			}
		}
	}
	s.saveState()
	return s.listNames(names), nil
}

// startOrder validates specs and orders them so that dependencies come first.
func startOrder(specs []AppSpec) ([]AppSpec, error) {
	byName := map[string]*AppSpec{}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, err
		}
		if byName[specs[i].Name] != nil {
			return nil, fmt.Errorf("supervisor: app %s given twice", specs[i].Name)
		}
		byName[specs[i].Name] = &specs[i]
	}
	var out []AppSpec
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("supervisor: dependency cycle: %v", append(path, n))
		case 2:
			return nil
		}
		state[n] = 1
		sp := byName[n]
		for _, d := range sp.DependsOn {
			if byName[d] != nil {
				if err := visit(d, append(path, n)); err != nil {
					return err
				}
			}
		}
		state[n] = 2
		out = append(out, *sp)
		return nil
	}
	for i := range specs {
		if err := visit(specs[i].Name, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Server) isDependency(name string, specs []AppSpec) bool {
	for _, sp := range specs {
		for _, d := range sp.DependsOn {
			if d == name {
				return true
			}
		}
	}
	return false
}

// waitDeps waits until every app spec depends on is online.
func (s *Server) waitDeps(ctx context.Context, spec *AppSpec) error {
	for _, d := range spec.DependsOn {
		s.mu.Lock()
		_, ok := s.apps[d]
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("supervisor: app %s depends on %s, which is not known", spec.Name, d)
		}
		if err := s.waitApp(ctx, d); err != nil {
			return fmt.Errorf("supervisor: app %s depends on %s: %w", spec.Name, d, err)
		}
	}
	return nil
}

// waitApp waits until every instance of the app is online, bounded by the
// app's ready timeout (plus its restarts' worth of patience) and ctx.
func (s *Server) waitApp(ctx context.Context, name string) error {
	s.mu.Lock()
	a := s.apps[name]
	var slots []*slot
	if a != nil {
		slots = append(slots, a.slots...)
	}
	s.mu.Unlock()
	if a == nil {
		return ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, a.readyTimeout()+a.killTimeout())
	defer cancel()
	for _, sl := range slots {
		if err := sl.waitSettled(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) startApp(ctx context.Context, spec *AppSpec, opts StartOptions) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrShutdown
	}
	a := s.apps[spec.Name]
	s.mu.Unlock()
	if a == nil {
		return s.addApp(spec, true)
	}
	s.mu.Lock()
	if !opts.UpdateEnv {
		spec.CallerEnv = a.spec.CallerEnv
	}
	same := specEqual(a.spec, spec)
	s.mu.Unlock()
	if same {
		// A stopped (or resurrected-as-stopped) app: its socket and
		// schedule went with the stop.
		s.mu.Lock()
		a.want = true
		s.mu.Unlock()
		if err := s.ensureSocket(a); err != nil {
			return err
		}
		s.mu.Lock()
		hasSched := a.sched != nil
		s.mu.Unlock()
		if !hasSched {
			s.startSchedule(a)
		}
		return s.eachSlot(ctx, a, slotCmd{kind: cmdStart}, false)
	}
	return s.updateApp(ctx, a, spec)
}

// addApp creates an app and its slots; want says whether they start.
func (s *Server) addApp(spec *AppSpec, want bool) error {
	cp := *spec
	a := &app{srv: s, name: spec.Name, spec: &cp, want: want, created: time.Now()}
	if spec.Port > 0 && want {
		sock, err := bindSocket(spec.Host, spec.Port)
		if err != nil {
			return fmt.Errorf("supervisor: app %s: %w", spec.Name, err)
		}
		a.sock = sock
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if a.sock != nil {
			a.sock.Close()
		}
		return ErrShutdown
	}
	s.apps[spec.Name] = a
	n := s.instanceCount(spec)
	for i := 0; i < n; i++ {
		s.addSlotLocked(a, want)
	}
	s.mu.Unlock()
	s.startSchedule(a)
	return nil
}

func (s *Server) addSlotLocked(a *app, want bool) *slot {
	sl := &slot{srv: s, app: a, id: s.nextID, index: len(a.slots), cmds: make(chan slotCmd), gone: make(chan struct{}), changed: make(chan struct{}), status: StatusStarting}
	if !want {
		sl.status = StatusStopped
	}
	s.nextID++
	a.slots = append(a.slots, sl)
	s.wg.Add(1)
	go sl.run(want)
	return sl
}

// updateApp gives a running app a new spec.
func (s *Server) updateApp(ctx context.Context, a *app, spec *AppSpec) error {
	cp := *spec
	s.mu.Lock()
	old := a.spec
	a.spec = &cp
	a.want = true
	// The instances that were there before the change; those that scaling
	// up adds start with the new spec already.
	kept := append([]*slot(nil), a.slots[:min(len(a.slots), s.instanceCount(spec))]...)
	s.mu.Unlock()
	if err := s.ensureSocket(a); err != nil {
		return err
	}
	if old.Instances != spec.Instances {
		if err := s.scaleLocked(ctx, a, s.instanceCount(spec)); err != nil {
			return err
		}
	}
	s.restartSchedule(a)
	scaled := *old
	scaled.Instances = spec.Instances
	switch {
	case specEqual(&scaled, spec):
		// Only the instance count changed: the running instances go on.
		return s.slotsDo(ctx, a, kept, slotCmd{kind: cmdStart}, true)
	case spec.Port > 0 && old.Port == spec.Port:
		return s.reloadSlots(ctx, kept)
	}
	return s.slotsDo(ctx, a, kept, slotCmd{kind: cmdRestart}, true)
}

// ensureSocket binds, rebinds or closes the app's listening socket to match
// its spec.
func (s *Server) ensureSocket(a *app) error {
	s.mu.Lock()
	spec, sock := a.spec, a.sock
	s.mu.Unlock()
	if sock != nil && (spec.Port == 0 || sock.port != spec.Port || sock.host != spec.Host) {
		sock.Close()
		sock = nil
		s.mu.Lock()
		a.sock = nil
		s.mu.Unlock()
	}
	if sock == nil && spec.Port > 0 {
		ns, err := bindSocket(spec.Host, spec.Port)
		if err != nil {
			return fmt.Errorf("supervisor: app %s: %w", spec.Name, err)
		}
		s.mu.Lock()
		a.sock = ns
		s.mu.Unlock()
	}
	return nil
}

// eachSlot sends c to every slot of a, all at once, and waits for the
// replies; with wait, it then waits for every slot to be online.
func (s *Server) eachSlot(ctx context.Context, a *app, c slotCmd, wait bool) error {
	s.mu.Lock()
	slots := append([]*slot(nil), a.slots...)
	s.mu.Unlock()
	return s.slotsDo(ctx, a, slots, c, wait)
}

// slotsDo is eachSlot for some of a's slots.
func (s *Server) slotsDo(ctx context.Context, a *app, slots []*slot, c slotCmd, wait bool) error {
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, sl := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sl.send(ctx, c)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return s.waitApp(ctx, a.name)
}

// resolve returns the apps and slots a target names: an app name, an
// instance id, or "all".
func (s *Server) resolve(target string) ([]*app, []*slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if target == "all" {
		apps := s.sortedAppsLocked()
		return apps, nil, nil
	}
	if a := s.apps[target]; a != nil {
		return []*app{a}, nil, nil
	}
	if id, err := strconv.Atoi(target); err == nil {
		for _, a := range s.apps {
			for _, sl := range a.slots {
				if sl.id == id {
					return nil, []*slot{sl}, nil
				}
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: %q (kin ls lists them)", ErrNotFound, target)
}

func (s *Server) sortedAppsLocked() []*app {
	apps := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	sort.Slice(apps, func(i, j int) bool {
		if !apps[i].created.Equal(apps[j].created) {
			return apps[i].created.Before(apps[j].created)
		}
		return apps[i].name < apps[j].name
	})
	return apps
}

// Stop stops the target's instances (gracefully, within the kill timeout)
// and keeps them in the list as stopped. An app's listening socket is
// closed when all its instances are stopped.
func (s *Server) Stop(ctx context.Context, target string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if err := sl.send(ctx, slotCmd{kind: cmdStop}); err != nil {
			return err
		}
	}
	var errs []error
	for _, a := range apps {
		s.mu.Lock()
		a.want = false
		s.mu.Unlock()
		s.stopSchedule(a)
		errs = append(errs, s.eachSlot(ctx, a, slotCmd{kind: cmdStop}, false))
		s.mu.Lock()
		if a.sock != nil {
			a.sock.Close()
			a.sock = nil
		}
		s.mu.Unlock()
	}
	s.saveState()
	return errors.Join(errs...)
}

// Restart stops and starts the target's instances (all at once) and waits
// until they are online. The listening socket stays open.
func (s *Server) Restart(ctx context.Context, target string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if err := sl.send(ctx, slotCmd{kind: cmdRestart}); err != nil {
			return err
		}
		if err := sl.waitSettled(ctx); err != nil {
			return err
		}
	}
	var errs []error
	for _, a := range apps {
		s.mu.Lock()
		a.want = true
		s.mu.Unlock()
		if err := s.ensureSocket(a); err != nil {
			errs = append(errs, err)
			continue
		}
		s.restartSchedule(a)
		errs = append(errs, s.eachSlot(ctx, a, slotCmd{kind: cmdRestart}, true))
	}
	s.saveState()
	return errors.Join(errs...)
}

// Reload replaces the target's instances one at a time: a new process is
// started (on the same listening socket), and once it is ready the old one
// is stopped gracefully. If a new process does not become ready, the old
// one keeps running and Reload returns the failure.
func (s *Server) Reload(ctx context.Context, target string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if err := sl.send(ctx, slotCmd{kind: cmdReload}); err != nil {
			return err
		}
	}
	var errs []error
	for _, a := range apps {
		s.mu.Lock()
		a.want = true
		s.mu.Unlock()
		if err := s.ensureSocket(a); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, s.reloadApp(ctx, a))
	}
	s.saveState()
	return errors.Join(errs...)
}

func (s *Server) reloadApp(ctx context.Context, a *app) error {
	s.mu.Lock()
	slots := append([]*slot(nil), a.slots...)
	s.mu.Unlock()
	return s.reloadSlots(ctx, slots)
}

// reloadSlots reloads slots one at a time.
func (s *Server) reloadSlots(ctx context.Context, slots []*slot) error {
	for _, sl := range slots {
		if err := sl.send(ctx, slotCmd{kind: cmdReload}); err != nil {
			return err
		}
		if err := sl.waitSettled(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Delete stops the target's apps and forgets them. An instance id deletes
// its whole app.
func (s *Server) Delete(ctx context.Context, target string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		apps = append(apps, sl.app)
	}
	var errs []error
	for _, a := range apps {
		s.stopSchedule(a)
		logs, _ := s.LogFiles(a.name)
		errs = append(errs, s.eachSlot(ctx, a, slotCmd{kind: cmdRemove}, false))
		s.closeLogs(logs)
		s.mu.Lock()
		if a.sock != nil {
			a.sock.Close()
			a.sock = nil
		}
		delete(s.apps, a.name)
		s.mu.Unlock()
	}
	s.saveState()
	return errors.Join(errs...)
}

// Scale sets how many instances app name runs: new instances start (and are
// waited for), surplus ones (the highest indexes) are stopped and removed.
func (s *Server) Scale(ctx context.Context, name string, n int) error {
	if n < 1 {
		return fmt.Errorf("supervisor: scale %s to %d: want 1 or more instances (kin stop stops them all)", name, n)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	a := s.apps[name]
	if a != nil {
		cp := *a.spec
		cp.Instances = n
		a.spec = &cp
	}
	s.mu.Unlock()
	if a == nil {
		return fmt.Errorf("%w: app %q", ErrNotFound, name)
	}
	err := s.scaleLocked(ctx, a, n)
	s.saveState()
	return err
}

func (s *Server) scaleLocked(ctx context.Context, a *app, n int) error {
	s.mu.Lock()
	var added, removed []*slot
	for len(a.slots) < n {
		added = append(added, s.addSlotLocked(a, a.want))
	}
	if len(a.slots) > n {
		removed = append(removed, a.slots[n:]...)
		a.slots = a.slots[:n]
	}
	want := a.want
	s.mu.Unlock()
	var errs []error
	for _, sl := range removed {
		errs = append(errs, sl.send(ctx, slotCmd{kind: cmdRemove}))
	}
	if want {
		for _, sl := range added {
			errs = append(errs, sl.waitSettled(ctx))
		}
	}
	return errors.Join(errs...)
}

// Signal sends sig to the target's running instances (their main process,
// not their process group).
func (s *Server) Signal(ctx context.Context, target string, sig string) error {
	signum, err := ParseSignal(sig)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	var errs []error
	for _, sl := range slots {
		errs = append(errs, sl.send(ctx, slotCmd{kind: cmdSignal, sig: signum}))
	}
	for _, a := range apps {
		errs = append(errs, s.eachSlot(ctx, a, slotCmd{kind: cmdSignal, sig: signum}, false))
	}
	return errors.Join(errs...)
}

// restartFor restarts one instance with a cause (memory, cron, watch).
func (s *Server) restartFor(sl *slot, cause string) {
	// send returns when the slot's goroutine is gone, at Shutdown at the latest.
	s.goOwned(func() { sl.send(context.Background(), slotCmd{kind: cmdRestart, cause: cause}) })
}
