package supervisor

import (
	"math/rand/v2"
	"time"
)

// Restart policy defaults.
const (
	DefaultBackoff       = 100 * time.Millisecond
	MaxBackoff           = 30 * time.Second
	DefaultMinUptime     = time.Second
	DefaultMaxRestarts   = 15
	DefaultRestartWindow = time.Minute
	DefaultReadyTimeout  = 30 * time.Second
	DefaultKillTimeout   = 5 * time.Second
)

// restartState is one instance's crash-loop bookkeeping.
type restartState struct {
	quick   int         // consecutive quick crashes
	history []time.Time // restarts within the budget window
}

// decide returns how long to wait before restarting an instance that ran
// for uptime and exited at now, or errored when the restart budget is spent.
// An instance that ran at least MinUptime restarts after RestartDelay alone;
// each consecutive quick crash doubles the backoff (with ±20 % jitter, capped
// at MaxBackoff).
func (r *restartState) decide(s *AppSpec, uptime time.Duration, now time.Time, jitter func() float64) (delay time.Duration, errored bool) {
	minUp := s.MinUptime.D()
	if minUp <= 0 {
		minUp = DefaultMinUptime
	}
	if uptime >= minUp {
		r.quick = 0
	} else {
		r.quick++
	}
	window := s.RestartWindow.D()
	if window <= 0 {
		window = DefaultRestartWindow
	}
	kept := r.history[:0]
	for _, t := range r.history {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	r.history = kept
	max := s.MaxRestarts
	if max == 0 {
		max = DefaultMaxRestarts
	}
	// The budget is spent by more than max restarts within the window, or
	// by more than max quick crashes in a row: with backoff growing to
	// 30 s, a crash loop would otherwise never fill a one-minute window.
	if max > 0 && (len(r.history) >= max || r.quick > max) {
		return 0, true
	}
	r.history = append(r.history, now)
	delay = s.RestartDelay.D()
	if r.quick > 0 {
		b := s.Backoff.D()
		if b <= 0 {
			b = DefaultBackoff
		}
		for i := 1; i < r.quick && b < MaxBackoff; i++ {
			b *= 2
		}
		if jitter == nil {
			jitter = rand.Float64
		}
		b = time.Duration(float64(b) * (0.8 + 0.4*jitter()))
		delay += min(b, MaxBackoff)
	}
	return delay, false
}

// reset forgets the crash history (a manual start or restart).
func (r *restartState) reset() { r.quick, r.history = 0, nil }
