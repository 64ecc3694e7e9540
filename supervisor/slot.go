package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Status is an instance's place in its lifecycle.
type Status string

// Instance statuses.
const (
	StatusStarting Status = "starting" // started (or waiting to restart), not ready yet
	StatusOnline   Status = "online"   // running and ready
	StatusStopping Status = "stopping" // asked to stop, not gone yet
	StatusStopped  Status = "stopped"  // not running, by request or by its restart policy
	StatusErrored  Status = "errored"  // not running: it crashed too often, or could not be started
)

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdRestart
	cmdReload
	cmdSignal
	cmdRemove
)

// slotCmd is an order to a slot's goroutine; the reply is sent once it is
// carried out (for reload: once the replacement is ready, or has failed).
type slotCmd struct {
	kind  cmdKind
	sig   syscall.Signal
	cause string // why a restart was ordered ("max_memory …"), for last_exit
	reply chan error
}

// slot is one instance of an app: a stable id and index, and at most one
// running process (two while it is being reloaded). Its goroutine owns the
// processes; the fields below it are guarded by Server.mu and describe the
// slot to readers.
type slot struct {
	srv   *Server
	app   *app
	id    int
	index int
	cmds  chan slotCmd
	gone  chan struct{} // closed when the goroutine has returned

	status    Status
	cur       *process
	pid       int
	started   time.Time
	restarts  int
	lastExit  string
	lastCode  int
	nextStart time.Time
	changed   chan struct{} // closed and replaced on every status change
}

// setLocked records a status change; s.mu must be held.
func (sl *slot) setLocked(st Status) {
	sl.status = st
	close(sl.changed)
	sl.changed = make(chan struct{})
}

func (sl *slot) set(f func()) {
	sl.srv.mu.Lock()
	f()
	sl.setLocked(sl.status)
	sl.srv.mu.Unlock()
}

// send gives the slot an order and waits for its reply.
func (sl *slot) send(ctx context.Context, c slotCmd) error {
	c.reply = make(chan error, 1)
	select {
	case sl.cmds <- c:
	case <-sl.gone:
		return fmt.Errorf("supervisor: instance %d is gone", sl.id)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-sl.gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitSettled waits until the slot is online, stopped or errored, and
// returns an error unless it is online.
func (sl *slot) waitSettled(ctx context.Context) error {
	for {
		sl.srv.mu.Lock()
		st, ch, last := sl.status, sl.changed, sl.lastExit
		sl.srv.mu.Unlock()
		switch st {
		case StatusOnline:
			return nil
		case StatusErrored:
			return fmt.Errorf("supervisor: %s instance %d errored: %s", sl.app.name, sl.index, last)
		case StatusStopped:
			if last != "" {
				return fmt.Errorf("supervisor: %s instance %d stopped: %s", sl.app.name, sl.index, last)
			}
			return fmt.Errorf("supervisor: %s instance %d stopped", sl.app.name, sl.index)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("supervisor: %s instance %d not online: %w", sl.app.name, sl.index, ctx.Err())
		case <-sl.gone:
			return fmt.Errorf("supervisor: %s instance %d removed", sl.app.name, sl.index)
		}
	}
}

// run is the slot's goroutine: it starts the process, watches it, restarts
// it by policy, and carries out orders, until the slot is removed or the
// server shuts down.
func (sl *slot) run(want bool) {
	defer sl.srv.wg.Done()
	defer close(sl.gone)
	var (
		cur, pending   *process
		curReady       bool
		pendingReply   chan error
		readyTimer     *time.Timer
		pendingTimer   *time.Timer
		restartTimer   *time.Timer
		rs             restartState
		readyTimeout   = func() time.Duration { return sl.app.readyTimeout() }
		timerC         = func(t *time.Timer) <-chan time.Time { return timerChan(t) }
		stopTimer      = func(t **time.Timer) { stopTimerPtr(t) }
		releaseInOwned = func(p *process) { sl.srv.goOwned(p.release) }
	)

	start := func() {
		stopTimer(&restartTimer)
		p, err := sl.app.spawn(sl)
		if err != nil {
			sl.set(func() {
				sl.status, sl.pid, sl.cur = StatusErrored, 0, nil
				sl.lastExit = err.Error()
			})
			sl.srv.logf("app %s instance %d: %v", sl.app.name, sl.index, err)
			return
		}
		cur, curReady = p, false
		readyTimer = time.NewTimer(readyTimeout())
		sl.set(func() {
			sl.status, sl.pid, sl.cur, sl.started = StatusStarting, p.pid, p, p.started
			sl.nextStart = time.Time{}
		})
	}
	// stopCur stops the current process and waits until it is gone.
	stopCur := func(ctx context.Context, cause string) {
		stopTimer(&readyTimer)
		if cur == nil {
			return
		}
		p := cur
		if cause != "" {
			p.setCause(cause)
		}
		sl.set(func() { sl.status = StatusStopping })
		p.stop(ctx, sl.app.killTimeout())
		desc, code, _ := p.exitDescription()
		releaseInOwned(p)
		cur, curReady = nil, false
		sl.set(func() {
			sl.status, sl.pid, sl.cur = StatusStopped, 0, nil
			sl.lastExit, sl.lastCode = desc, code
		})
	}
	dropPending := func(ctx context.Context, err error) {
		stopTimer(&pendingTimer)
		if pending == nil {
			return
		}
		pending.stop(ctx, sl.app.killTimeout())
		releaseInOwned(pending)
		pending = nil
		if pendingReply != nil {
			pendingReply <- err
			pendingReply = nil
		}
	}

	if want {
		start()
	} else {
		sl.set(func() { sl.status = StatusStopped })
	}
	for {
		var exitC, readyC, pExitC, pReadyC <-chan struct{}
		if cur != nil {
			exitC = cur.exited()
			if !curReady {
				readyC = cur.ready
			}
		}
		if pending != nil {
			pExitC, pReadyC = pending.exited(), pending.ready
		}
		select {
		case <-sl.srv.quit:
			ctx := context.Background()
			dropPending(ctx, ErrShutdown)
			stopCur(ctx, "")
			stopTimer(&restartTimer)
			return

		case c := <-sl.cmds:
			ctx := context.Background()
			switch c.kind {
			case cmdStart:
				want = true
				if cur == nil && pending == nil {
					rs.reset()
					start()
				}
				c.reply <- nil
			case cmdStop, cmdRemove:
				want = false
				stopTimer(&restartTimer)
				dropPending(ctx, errors.New("supervisor: reload abandoned: the instance was stopped"))
				stopCur(ctx, c.cause)
				sl.set(func() { sl.status, sl.nextStart = StatusStopped, time.Time{} })
				c.reply <- nil
				if c.kind == cmdRemove {
					return
				}
			case cmdRestart:
				want = true
				dropPending(ctx, errors.New("supervisor: reload abandoned: the instance was restarted"))
				had := cur != nil
				stopCur(ctx, c.cause)
				if c.cause == "" {
					rs.reset()
				}
				if had || c.cause != "" {
					sl.set(func() { sl.restarts++ })
				}
				start()
				c.reply <- nil
			case cmdReload:
				want = true
				if pending != nil {
					c.reply <- errors.New("supervisor: a reload of this instance is already running")
					continue
				}
				if cur == nil || !curReady {
					// Nothing healthy to keep serving: a plain restart.
					stopCur(ctx, "")
					rs.reset()
					start()
					sl.set(func() { sl.restarts++ })
					c.reply <- nil
					continue
				}
				p, err := sl.app.spawn(sl)
				if err != nil {
					c.reply <- fmt.Errorf("supervisor: reload %s instance %d: %w", sl.app.name, sl.index, err)
					continue
				}
				pending, pendingReply = p, c.reply
				pendingTimer = time.NewTimer(readyTimeout())
			case cmdSignal:
				var err error
				if cur == nil {
					err = fmt.Errorf("supervisor: %s instance %d is not running", sl.app.name, sl.index)
				} else if e := syscall.Kill(cur.pid, c.sig); e != nil {
					err = fmt.Errorf("supervisor: signal %s instance %d (pid %d): %w", sl.app.name, sl.index, cur.pid, e)
				}
				c.reply <- err
			}

		case <-readyC:
			curReady = true
			stopTimer(&readyTimer)
			sl.set(func() { sl.status = StatusOnline })

		case <-timerC(readyTimer):
			readyTimer = nil
			// Not ready in time: it counts as a failed start.
			cur.setCause(fmt.Sprintf("not ready within %v", readyTimeout()))
			cur.stop(context.Background(), sl.app.killTimeout())
			// Its exit is handled by the exitC case on the next turn.

		case <-exitC:
			p := cur
			desc, code, failed := p.exitDescription()
			uptime := time.Since(p.started)
			releaseInOwned(p)
			cur, curReady = nil, false
			stopTimer(&readyTimer)
			policy := sl.app.restartPolicy()
			switch {
			case !want:
				sl.set(func() { sl.status, sl.pid, sl.cur, sl.lastExit, sl.lastCode = StatusStopped, 0, nil, desc, code })
			case policy == RestartNever || (policy == RestartOnFailure && !failed):
				st := StatusStopped
				if failed {
					st = StatusErrored
				}
				sl.set(func() { sl.status, sl.pid, sl.cur, sl.lastExit, sl.lastCode = st, 0, nil, desc, code })
			default:
				delay, errored := rs.decide(sl.app.specSnapshot(), uptime, time.Now(), nil)
				if errored {
					sl.set(func() {
						sl.status, sl.pid, sl.cur, sl.lastCode = StatusErrored, 0, nil, code
						sl.lastExit = desc + "; restart budget spent"
					})
					sl.srv.logf("app %s instance %d errored: %s", sl.app.name, sl.index, desc)
					continue
				}
				sl.set(func() {
					sl.restarts++
					sl.lastExit, sl.lastCode = desc, code
				})
				if delay <= 0 {
					start()
					continue
				}
				restartTimer = time.NewTimer(delay)
				sl.set(func() { sl.status, sl.pid, sl.cur, sl.nextStart = StatusStarting, 0, nil, time.Now().Add(delay) })
			}

		case <-timerC(restartTimer):
			restartTimer = nil
			if want && cur == nil {
				start()
			}

		case <-pReadyC:
			stopTimer(&pendingTimer)
			old := cur
			cur, curReady, pending = pending, true, nil
			stopTimer(&readyTimer)
			sl.set(func() {
				sl.status, sl.pid, sl.cur, sl.started = StatusOnline, cur.pid, cur, cur.started
				sl.restarts++
			})
			pendingReply <- nil
			pendingReply = nil
			if old != nil {
				// The old process drains and exits while the next instance
				// is reloaded; the socket stays open all along.
				sl.srv.goOwned(func() {
					old.stop(context.Background(), sl.app.killTimeout())
					old.release()
				})
			}

		case <-pExitC:
			desc, _, _ := pending.exitDescription()
			dropPending(context.Background(), fmt.Errorf("supervisor: reload %s instance %d: the new process ended before it was ready (%s); the old one keeps running", sl.app.name, sl.index, desc))

		case <-timerC(pendingTimer):
			pendingTimer = nil
			dropPending(context.Background(), fmt.Errorf("supervisor: reload %s instance %d: the new process was not ready within %v; the old one keeps running", sl.app.name, sl.index, readyTimeout()))
		}
	}
}

func timerChan(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimerPtr(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
