package watcher

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"crmdrop/internal/fakeclock"
)

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
	clock := fakeclock.New(t0)
	h := run(t, Options{Root: root, Poll: true, Settle: settle, Rescan: rescan, Clock: clock})
	waitFor(t, "the settle and rescan timers", func() bool {
		return clock.HasTimer(t0.Add(settle)) && clock.HasTimer(t0.Add(rescan))
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
	waitFor(t, "a settle timer for the change", func() bool { return clock.HasTimer(t0.Add(rescan + settle)) })
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
	clock := fakeclock.New(t0)
	var health healthLog
	h := run(t, Options{Root: root, Settle: settle, Rescan: time.Hour, Clock: clock, OnHealth: health.record})
	health.wait(t, 1)
	waitFor(t, "the retry timer", func() bool { return clock.HasTimer(t0.Add(maxRetry)) })
	h.write("Leads/1/a.pdf", "x")
	clock.Advance(maxRetry)
	health.wait(t, 2)
	waitFor(t, "the settle timer", func() bool { return clock.HasTimer(t0.Add(maxRetry + settle)) })
	clock.Advance(settle)
	if r := h.next(); r.Rel != "Leads/1/a.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/1/a.pdf", r.Rel)
	}
}
