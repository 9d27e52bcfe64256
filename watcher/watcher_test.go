package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Real file events and the real clock, with short durations. Tests wait on
// conditions with deadlines; to show that something did NOT happen they
// wait for a later "barrier" file instead of sleeping.

const (
	testSettle = 100 * time.Millisecond
	deadline   = 5 * time.Second
)

type harness struct {
	t     *testing.T
	w     *Watcher
	root  string
	ready chan Ready
	start time.Time
}

// run starts a Watcher on opts (Root defaults to a new temp folder) and
// stops it at the end of the test, checking that Run returned ctx.Err().
func run(t *testing.T, opts Options) *harness {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if opts.Settle == 0 {
		opts.Settle = testSettle
	}
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{t: t, w: w, root: opts.Root, ready: make(chan Ready), start: time.Now()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h.ready) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(deadline):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func (h *harness) write(rel, content string) {
	h.t.Helper()
	p := h.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the next Ready.
func (h *harness) next() Ready {
	h.t.Helper()
	select {
	case r := <-h.ready:
		return r
	case <-time.After(deadline):
		h.t.Fatalf("no Ready within %v", deadline)
		return Ready{}
	}
}

// until collects every Ready up to and including the one for rel.
func (h *harness) until(rel string) []Ready {
	h.t.Helper()
	var got []Ready
	for {
		r := h.next()
		got = append(got, r)
		if r.Rel == rel {
			return got
		}
	}
}

// barrier writes a new file and returns what was reported before it. The
// barrier is observed after everything earlier, so a Ready that was going
// to come for an earlier file has come by the time it settles.
func (h *harness) barrier() []Ready {
	h.t.Helper()
	rel := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	h.write(rel, "b")
	got := h.until(rel)
	return got[:len(got)-1]
}

func (h *harness) expectNothing() {
	h.t.Helper()
	if got := h.barrier(); len(got) > 0 {
		h.t.Fatalf("unexpected Ready: %+v", got)
	}
}

// checkStat fails unless r matches what Lstat says about r.Rel now.
func (h *harness) checkStat(r Ready, symlink bool) {
	h.t.Helper()
	fi, err := os.Lstat(h.path(r.Rel))
	if err != nil {
		h.t.Fatal(err)
	}
	if r.Size != fi.Size() || !r.ModTime.Equal(fi.ModTime()) || r.Symlink != symlink {
		h.t.Fatalf("Ready = %+v, want size %d, mtime %v, symlink %v", r, fi.Size(), fi.ModTime(), symlink)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCreatedFileIsReadyOnceAfterSettle(t *testing.T) {
	h := run(t, Options{})
	h.expectNothing() // also makes sure the watch is in place
	h.write("Leads/123/contract.pdf", "%PDF-1.7 hello")
	written := time.Now()
	r := h.next()
	took := time.Since(written)
	if r.Rel != "Leads/123/contract.pdf" {
		t.Fatalf("Ready.Rel = %q, want %q", r.Rel, "Leads/123/contract.pdf")
	}
	h.checkStat(r, false)
	if took < testSettle {
		t.Fatalf("Ready %v after the write, before the settle time %v", took, testSettle)
	}
	t.Logf("ready %v after the write (settle %v)", took, testSettle)
	h.expectNothing()
	if got := h.w.Tracked(); got != 3 { // the file and two barriers
		t.Fatalf("Tracked() = %d, want 3", got)
	}
}

func TestSlowAppendIsReadyOnceWithFinalSize(t *testing.T) {
	const settle = 300 * time.Millisecond
	h := run(t, Options{Settle: settle})
	h.expectNothing()
	f, err := os.Create(h.path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := strings.Repeat("x", 1000)
	end := time.Now().Add(time.Second)
	var size int64
	var last time.Time // when the last write began: the watcher saw it no earlier
	for time.Now().Before(end) {
		last = time.Now()
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		size += int64(len(chunk))
		time.Sleep(150 * time.Millisecond) // the scenario: a slow copy
		select {
		case r := <-h.ready:
			t.Fatalf("Ready while the file was still growing: %+v", r)
		default:
		}
	}
	r := h.next()
	if r.Rel != "big.bin" || r.Size != size {
		t.Fatalf("Ready = %+v, want big.bin with size %d", r, size)
	}
	if since := time.Since(last); since < settle {
		t.Fatalf("Ready %v after the last write, settle is %v", since, settle)
	}
	h.checkStat(r, false)
	h.expectNothing()
}

func TestFileInNewNestedFolder(t *testing.T) {
	h := run(t, Options{})
	h.expectNothing()
	// mkdir -p and the file at once: the inner folders exist before any
	// watch on them does.
	h.write("a/b/c/f.txt", "hello")
	r := h.next()
	if r.Rel != "a/b/c/f.txt" {
		t.Fatalf("Ready.Rel = %q, want a/b/c/f.txt", r.Rel)
	}
	h.checkStat(r, false)
	// The new folders are watched too.
	h.write("a/b/c/g.txt", "again")
	if r := h.next(); r.Rel != "a/b/c/g.txt" {
		t.Fatalf("Ready.Rel = %q, want a/b/c/g.txt", r.Rel)
	}
}

func TestFilesPresentBeforeRun(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) {
			root := t.TempDir()
			want := map[string]bool{"top.txt": true, "Leads/1/a.pdf": true, "Leads/1/scans/p1.jpg": true}
			for rel := range want {
				p := filepath.Join(root, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h := run(t, Options{Root: root, Poll: poll, Rescan: time.Hour})
			for range want {
				r := h.next()
				if !want[r.Rel] {
					t.Fatalf("unexpected or repeated Ready %+v", r)
				}
				want[r.Rel] = false
				h.checkStat(r, false)
			}
		})
	}
}

func TestPollFindsNewFiles(t *testing.T) {
	h := run(t, Options{Poll: true, Rescan: 30 * time.Millisecond})
	if h.w.fsw != nil {
		t.Fatal("Poll mode created a file-event watcher")
	}
	h.write("Deals/9/new/deep/x.txt", "content")
	r := h.next()
	if r.Rel != "Deals/9/new/deep/x.txt" {
		t.Fatalf("Ready.Rel = %q", r.Rel)
	}
	h.checkStat(r, false)
	h.expectNothing() // many scans pass while the barrier settles
}

func TestSkip(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	skip := func(rel string, isDir bool) bool {
		mu.Lock()
		asked = append(asked, rel)
		mu.Unlock()
		return strings.HasPrefix(rel, "_") || strings.HasSuffix(rel, ".tmp")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "_uploaded", "Leads"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "_uploaded", "Leads", "old.pdf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := run(t, Options{Root: root, Skip: skip})
	h.expectNothing()
	h.write("_failed/Leads/x.pdf", "x")
	h.write("_uploaded/Leads/new.pdf", "x")
	h.write("Leads/1/download.tmp", "x")
	h.write("Leads/1/ok.pdf", "x")
	got := h.until("Leads/1/ok.pdf")
	if len(got) != 1 {
		t.Fatalf("skipped files reported: %+v", got[:len(got)-1])
	}
	h.expectNothing()
	mu.Lock()
	defer mu.Unlock()
	for _, rel := range asked {
		if rel == "" || strings.HasPrefix(rel, "_uploaded/") || strings.HasPrefix(rel, "_failed/") {
			t.Errorf("Skip asked about %q: the root and paths inside skipped folders must not be looked at", rel)
		}
	}
}

func TestSymlinksAreReportedNotFollowed(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.bin")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "inner.txt"), []byte("inner"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "dirlink")); err != nil {
		t.Skipf("cannot create symlinks here: %v", err)
	}
	h := run(t, Options{Root: root})
	if err := os.MkdirAll(h.path("Leads/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, h.path("Leads/1/secret.bin")); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"dirlink": true, "Leads/1/secret.bin": true}
	for range want {
		r := h.next()
		if !want[r.Rel] {
			t.Fatalf("unexpected or repeated Ready %+v", r)
		}
		want[r.Rel] = false
		// The size is the link's own (its target's name), not the target's.
		h.checkStat(r, true)
		if r.Size == 5000 {
			t.Fatalf("Ready %+v has the size of the link's target", r)
		}
	}
	h.expectNothing() // nothing from inside the linked folder
}

func TestEmptyFileWaitsForContent(t *testing.T) {
	h := run(t, Options{})
	h.write("Leads/1/scan.pdf", "")
	h.expectNothing()
	h.write("Leads/1/scan.pdf", "now with content")
	r := h.next()
	if r.Rel != "Leads/1/scan.pdf" || r.Size != int64(len("now with content")) {
		t.Fatalf("Ready = %+v, want Leads/1/scan.pdf with content", r)
	}
}

func TestForgetReportsAgain(t *testing.T) {
	h := run(t, Options{})
	h.write("a.txt", "content")
	first := h.next()
	h.w.Forget("a.txt")
	second := h.next()
	if second != first {
		t.Fatalf("after Forget: Ready = %+v, want %+v again", second, first)
	}
	h.expectNothing()
}

func TestRemovedAndBackReportsAgain(t *testing.T) {
	h := run(t, Options{})
	h.write("a.txt", "content")
	first := h.next()
	if err := os.Remove(h.path("a.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed file to be forgotten", func() bool { return h.w.Tracked() == 0 })
	// Same content and mtime: only its absence makes it new.
	h.write("a.txt", "content")
	if err := os.Chtimes(h.path("a.txt"), time.Time{}, first.ModTime); err != nil {
		t.Fatal(err)
	}
	second := h.next()
	if second.Rel != first.Rel || second.Size != first.Size || !second.ModTime.Equal(first.ModTime) {
		t.Fatalf("after remove and recreate: Ready = %+v, want %+v again", second, first)
	}
}

// healthLog records OnHealth calls.
type healthLog struct {
	mu    sync.Mutex
	calls []error
}

func (l *healthLog) record(err error) {
	l.mu.Lock()
	l.calls = append(l.calls, err)
	l.mu.Unlock()
}

func (l *healthLog) get() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.calls...)
}

// wait waits until OnHealth was called n times and checks that the calls
// alternate err, nil, err, ...: one call per episode.
func (l *healthLog) wait(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d OnHealth calls", n), func() bool { return len(l.get()) >= n })
	calls := l.get()
	if len(calls) != n {
		t.Fatalf("OnHealth called %d times (%v), want %d", len(calls), calls, n)
	}
	for i, err := range calls {
		if (i%2 == 0) != (err != nil) {
			t.Fatalf("OnHealth calls = %v, want err, nil, err, ...", calls)
		}
	}
}

func TestRootMissingAtStart(t *testing.T) {
	root := filepath.Join(t.TempDir(), "inbox")
	var health healthLog
	h := run(t, Options{Root: root, Rescan: 50 * time.Millisecond, OnHealth: health.record})
	health.wait(t, 1)
	if err := health.get()[0]; !strings.Contains(err.Error(), "inbox") {
		t.Fatalf("OnHealth error %q does not say what is wrong", err)
	}
	h.write("Leads/1/a.pdf", "content")
	health.wait(t, 2)
	if r := h.next(); r.Rel != "Leads/1/a.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/1/a.pdf", r.Rel)
	}
	h.write("Leads/1/b.pdf", "watched after recovery")
	if r := h.next(); r.Rel != "Leads/1/b.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/1/b.pdf", r.Rel)
	}
}

func TestRootGoneWhileRunningKeepsState(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "inbox")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var health healthLog
	h := run(t, Options{Root: root, Rescan: 50 * time.Millisecond, OnHealth: health.record})
	h.write("Leads/1/a.pdf", "content")
	if r := h.next(); r.Rel != "Leads/1/a.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/1/a.pdf", r.Rel)
	}
	// As an unmounted share: the folder is gone, then back as it was.
	if err := os.Rename(root, filepath.Join(parent, "away")); err != nil {
		t.Fatal(err)
	}
	health.wait(t, 1)
	if got := h.w.Tracked(); got != 1 {
		t.Fatalf("Tracked() = %d while the root is gone, want 1 (nothing forgotten)", got)
	}
	if err := os.Rename(filepath.Join(parent, "away"), root); err != nil {
		t.Fatal(err)
	}
	health.wait(t, 2)
	h.expectNothing() // a.pdf is not reported twice
	h.write("Leads/2/b.pdf", "watched again")
	if r := h.next(); r.Rel != "Leads/2/b.pdf" {
		t.Fatalf("Ready.Rel = %q, want Leads/2/b.pdf", r.Rel)
	}
}

func TestRescanDoesNotReportAgain(t *testing.T) {
	const n = 2000
	root := t.TempDir()
	for i := range n {
		dir := filepath.Join(root, "Leads", fmt.Sprint(i%20))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.txt", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := run(t, Options{Root: root, Rescan: 20 * time.Millisecond})
	seen := make(map[string]bool)
	for range n {
		r := h.next()
		if seen[r.Rel] {
			t.Fatalf("%s reported twice", r.Rel)
		}
		seen[r.Rel] = true
	}
	h.w.Rescan()
	h.expectNothing()
	if got := h.w.Tracked(); got != n+1 {
		t.Fatalf("Tracked() = %d, want %d", got, n+1)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"no root", Options{}, false},
		{"negative settle", Options{Root: "x", Settle: -1}, false},
		{"negative rescan", Options{Root: "x", Rescan: -1}, false},
		{"defaults", Options{Root: "x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%+v) error = %v, want ok=%v", tt.opts, err, tt.ok)
			}
			if tt.ok && (w.opts.Settle != defaultSettle || w.opts.Rescan != defaultRescan || !filepath.IsAbs(w.root)) {
				t.Fatalf("New(%+v) defaults: settle %v, rescan %v, root %q", tt.opts, w.opts.Settle, w.opts.Rescan, w.root)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	h := run(t, Options{})
	h.expectNothing() // the first Run is running
	if err := h.w.Run(t.Context(), make(chan Ready)); err == nil {
		t.Fatal("second Run returned nil, want an error")
	}
}

func TestCancelWhileReceiverIsBusy(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := New(Options{Root: root, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, make(chan Ready)) }() // nobody receives
	waitFor(t, "the file to be tracked", func() bool { return w.Tracked() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run blocked on a send after cancel")
	}
}

// A renamed file is reported at its new path with the identity it had at the old one,
// which is how the ledger knows it is not a new file.
func TestReadyCarriesFileIDAcrossRename(t *testing.T) {
	h := run(t, Options{})
	h.write("Leads/1/a.pdf", "content")
	first := h.next()
	if first.FileID == "" {
		t.Fatalf("Ready.FileID is empty on a local file system: %+v", first)
	}
	if err := os.Rename(h.path("Leads/1"), h.path("Leads/1 Acme")); err != nil {
		t.Fatal(err)
	}
	got := h.until("Leads/1 Acme/a.pdf")
	last := got[len(got)-1]
	if last.FileID != first.FileID {
		t.Errorf("FileID after the folder rename = %q, want %q", last.FileID, first.FileID)
	}
}

func TestWatchFixNamesTheInotifyLimit(t *testing.T) {
	err := fmt.Errorf("add watch: %w", syscall.ENOSPC)
	if got := watchFix(err); !strings.Contains(got, "fs.inotify.max_user_watches") {
		t.Errorf("watchFix(ENOSPC) = %q, want it to name fs.inotify.max_user_watches", got)
	}
	if got := watchFix(os.ErrPermission); strings.Contains(got, "inotify") {
		t.Errorf("watchFix(permission) = %q, should not blame inotify", got)
	}
}
