package supervisor

import (
	"testing"
	"time"
)

func TestRestartDecide(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 } // no jitter: factor 1.0
	now := time.Unix(1000, 0)

	// Defaults: quick crashes back off 100 ms, doubling to 30 s, and the
	// 16th quick crash in a row ends the loop although the window never
	// holds 15 restarts (regression: a crash loop went on forever).
	var r restartState
	spec := &AppSpec{}
	var delays []time.Duration
	for i := 0; ; i++ {
		d, errored := r.decide(spec, 10*time.Millisecond, now, half)
		if errored {
			if i != DefaultMaxRestarts {
				t.Fatalf("errored after %d quick crashes, want %d", i, DefaultMaxRestarts)
			}
			break
		}
		delays = append(delays, d)
		now = now.Add(d + 10*time.Millisecond)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for i, w := range want {
		if delays[i] != w {
			t.Fatalf("delay %d = %v, want %v (all: %v)", i, delays[i], w, delays)
		}
	}
	if last := delays[len(delays)-1]; last != MaxBackoff {
		t.Fatalf("last delay %v, want the cap %v", last, MaxBackoff)
	}

	// A stable run resets the backoff: restart at once.
	if d, errored := r.decide(&AppSpec{MaxRestarts: -1}, 5*time.Second, now, half); errored || d != 0 {
		t.Fatalf("after a stable run: %v %v", d, errored)
	}

	// The window: more than MaxRestarts restarts within it, however stable.
	var w restartState
	spec = &AppSpec{MaxRestarts: 3, RestartWindow: Duration(time.Minute), RestartDelay: Duration(time.Second)}
	for i := 0; i < 3; i++ {
		if d, errored := w.decide(spec, 2*time.Second, now, half); errored || d != time.Second {
			t.Fatalf("restart %d: %v %v", i, d, errored)
		}
		now = now.Add(3 * time.Second)
	}
	if _, errored := w.decide(spec, 2*time.Second, now, half); !errored {
		t.Fatal("4th restart within the window allowed")
	}
	// Once the window has moved on, restarts are allowed again.
	if _, errored := w.decide(spec, 2*time.Second, now.Add(2*time.Minute), half); errored {
		t.Fatal("restart refused after the window passed")
	}
	// Unlimited.
	var u restartState
	for i := 0; i < 100; i++ {
		if _, errored := u.decide(&AppSpec{MaxRestarts: -1}, 0, now, half); errored {
			t.Fatal("unlimited budget spent")
		}
	}
}
