package watcher

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// hasTimer reports whether a timer is set for at.
func (c *fakeClock) hasTimer(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.at.Equal(at) {
			return true
		}
	}
	return false
}

func (h *harness) noReadyYet() {
	h.t.Helper()
	select {
	case r := <-h.ready:
		h.t.Fatalf("Ready before its time: %+v", r)
	default:
	}
}

// With a manual clock, in poll mode: settling is measured on the Clock,
// and a change seen by a later scan restarts it.
func TestManualClockPollSettle(t *testing.T) {
	const settle, rescan = 10 * time.Second, time.Minute
	root := t.TempDir()
	file := filepath.Join(root, "a.txt")
	if err := os.WriteFile(file, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	h := run(t, Options{Root: root, Poll: true, Settle: settle, Rescan: rescan, Clock: clock})
	waitFor(t, "the settle and rescan timers", func() bool {
		return clock.hasTimer(t0.Add(settle)) && clock.hasTimer(t0.Add(rescan))
	})
	clock.Advance(settle - time.Second)
	h.noReadyYet()
	clock.Advance(time.Second)
	if r := h.next(); r.Rel != "a.txt" || r.Size != 1 {
		t.Fatalf("Ready = %+v, want a.txt of size 1", r)
	}

	if err := os.WriteFile(file, []byte("12"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock.Advance(rescan - settle) // the rescan sees the change
	waitFor(t, "a settle timer for the change", func() bool { return clock.hasTimer(t0.Add(rescan + settle)) })
	h.noReadyYet()
	clock.Advance(settle)
	if r := h.next(); r.Rel != "a.txt" || r.Size != 2 {
		t.Fatalf("Ready = %+v, want a.txt of size 2", r)
	}
}

// A missing root is retried after min(Rescan, 5s), not after Rescan.
func TestManualClockRootRetry(t *testing.T) {
	const settle = time.Second
	root := filepath.Join(t.TempDir(), "inbox")
	clock := newFakeClock()
	var health healthLog
	h := run(t, Options{Root: root, Settle: settle, Rescan: time.Hour, Clock: clock, OnHealth: health.record})
	health.wait(t, 1)
	waitFor(t, "the retry timer", func() bool { return clock.hasTimer(t0.Add(maxRetry)) })
	h.write("Leads/1/a.pdf", "x")
	clock.Advance(maxRetry)
	health.wait(t, 2)
	waitFor(t, "the settle timer", func() bool { return clock.hasTimer(t0.Add(maxRetry + settle)) })
	clock.Advance(settle)
	if r := h.next(); r.Rel != "Leads/1/a.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/1/a.pdf", r.Rel)
	}
}
