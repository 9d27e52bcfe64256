// Package watcher reports the files of a folder tree that are ready to be
// picked up: present, non-empty, and with a size and modification time
// observed unchanged for a settle period.
//
// File events (fsnotify) are hints that make pickup prompt; os.Lstat decides.
// The tree is also scanned in full at start, after any event error or
// overflow, every rescan interval and on request, so a lost event delays a
// file but never loses it. Symbolic links are never followed or read: they
// are reported as such so the caller can reject them.
//
// The watcher knows nothing of uploads or ledgers: it reports each identity
// (path, size, mtime) once, and again only when it changes and settles again,
// after Forget, or after the file went away and came back.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"crmdrop/internal/clock"
)

// Ready says a file has settled and can be picked up.
type Ready struct {
	Rel     string    // slash-separated, relative to Root
	Size    int64     // from Lstat: for a link, the length of its target's name
	ModTime time.Time // from Lstat
	// FileID is the file-system identity (fileid.Of) read when the file settled, ""
	// when the file system gives none: it survives renames and moves.
	FileID string
	// Symlink marks a symbolic link (or, on Windows, a junction or other
	// reparse point that is not a plain file): it was never followed or
	// read, and the caller should reject the link itself.
	Symlink bool
}

// Options configure a Watcher. The zero value of every field but Root works.
type Options struct {
	Root   string        // the folder to watch; required
	Settle time.Duration // how long size and mtime must stay unchanged; 0 means 5s
	Rescan time.Duration // interval between full scans; 0 means 1m
	Poll   bool          // no file events: scans alone (network mounts)
	// Skip reports whether the watcher must not look at rel (slash-separated,
	// relative to Root) at all; a skipped folder is neither watched nor
	// walked. It is never asked about the root. nil skips nothing.
	Skip   func(rel string, isDir bool) bool
	Clock  clock.Clock  // nil means the real clock
	Logger *slog.Logger // nil discards
	// OnHealth is called from Run's goroutine with a non-nil error when the
	// root becomes missing or unreadable (once per episode) and with nil
	// when it is back. It must not block for long: nothing is watched
	// meanwhile.
	OnHealth func(err error)
}

const (
	defaultSettle = 5 * time.Second
	defaultRescan = time.Minute
	// maxRetry bounds how long a missing root goes unnoticed once it is back.
	maxRetry = 5 * time.Second
	// windowsBuffer is the ReadDirectoryChangesW buffer per watched folder
	// (fsnotify's default is 64 KiB: 640 MB for 10,000 record folders).
	// An overflow only costs a rescan. Other backends ignore it.
	windowsBuffer = 16 << 10
)

// Watcher watches one folder tree. Create it with New and start it with Run.
// Rescan, Forget and Tracked are safe for concurrent use, also before Run.
type Watcher struct {
	opts  Options
	root  string // absolute and clean
	log   *slog.Logger
	clock clock.Clock

	started atomic.Bool
	tracked atomic.Int64

	mu      sync.Mutex // guards the requests below
	rescan  bool
	forgets []string
	wake    chan struct{} // capacity 1: a request is waiting

	// Owned by Run's goroutine.
	fsw      *fsnotify.Watcher // nil when polling
	s        *settler
	dirs     map[string]uint32 // folders walked (rel) -> the full scan that last saw them
	gen      uint32            // full scans so far
	healthy  bool
	needScan bool
	pending  []Ready // settled, not yet taken by the receiver
	head     int     // pending[:head] were sent
	scanErr  string  // last scan problem logged, to log once per episode
	watchErr string  // same for failures to add a watch
}

// New checks opts and returns a Watcher. It does not touch the file system:
// a missing root is reported by Run through OnHealth.
func New(opts Options) (*Watcher, error) {
	if opts.Root == "" {
		return nil, errors.New("watcher: no root folder given")
	}
	if opts.Settle < 0 || opts.Rescan < 0 {
		return nil, fmt.Errorf("watcher: settle (%v) and rescan (%v) must not be negative", opts.Settle, opts.Rescan)
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("watcher: root folder %q: %w", opts.Root, err)
	}
	if opts.Settle == 0 {
		opts.Settle = defaultSettle
	}
	if opts.Rescan == 0 {
		opts.Rescan = defaultRescan
	}
	if opts.Skip == nil {
		opts.Skip = func(string, bool) bool { return false }
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OnHealth == nil {
		opts.OnHealth = func(error) {}
	}
	return &Watcher{
		opts:    opts,
		root:    root,
		log:     opts.Logger.With("root", root),
		clock:   opts.Clock,
		s:       newSettler(opts.Settle, opts.Clock.Now()),
		wake:    make(chan struct{}, 1),
		dirs:    make(map[string]uint32),
		healthy: true,
	}, nil
}

// Run watches until ctx is cancelled, sending settled files on out, and then
// returns ctx.Err(). Sends respect ctx; files settled while the receiver is
// busy are queued, and dropped from the queue if they change or vanish
// before they are taken. A missing or unreadable root never ends Run: it is
// reported through OnHealth and retried. Run may be called only once; it
// closes its file-event watcher before returning.
func (w *Watcher) Run(ctx context.Context, out chan<- Ready) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called twice")
	}
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if !w.opts.Poll {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			// Scans alone still find every file, only later.
			w.log.Warn("file events unavailable, polling instead", "err", err)
		} else {
			w.fsw = fsw
			defer fsw.Close()
			events, errs = fsw.Events, fsw.Errors
		}
	}

	var (
		rescanC  <-chan time.Time
		settleC  <-chan time.Time
		settleAt time.Time
	)
	w.needScan = true
	for {
		if w.needScan {
			w.needScan = false
			w.fullScan()
			rescanC = w.clock.After(w.interval())
		}
		// One timer, for the earliest due file; re-armed only when an
		// earlier one appears, so bursts of events do not create timers.
		if at, ok := w.s.next(); ok && (settleC == nil || at.Before(settleAt)) {
			settleAt = at
			settleC = w.clock.After(max(0, at.Sub(w.clock.Now())))
		}
		w.tracked.Store(int64(len(w.s.files)))

		var send chan<- Ready
		var next Ready
		if r, ok := w.nextPending(); ok {
			send, next = out, r
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case send <- next:
			w.head++
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.handleEvent(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("file events lost, rescanning", "err", err)
			w.needScan = true
		case <-rescanC:
			w.needScan = true
		case <-settleC:
			settleC = nil
			w.settleDue()
		case <-w.wake:
			w.takeRequests()
		}
	}
}

// Rescan asks Run for a full scan soon. It does not block.
func (w *Watcher) Rescan() {
	w.mu.Lock()
	w.rescan = true
	w.mu.Unlock()
	w.poke()
}

// Forget makes the next observation of rel count as new: once it settles
// again it is reported again, even with an unchanged identity. Run looks at
// rel again soon, so no event or scan is needed. It does not block.
func (w *Watcher) Forget(rel string) {
	w.mu.Lock()
	w.forgets = append(w.forgets, rel)
	w.mu.Unlock()
	w.poke()
}

// Tracked reports how many files the watcher holds state for (for metrics).
func (w *Watcher) Tracked() int { return int(w.tracked.Load()) }

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) takeRequests() {
	w.mu.Lock()
	rescan, forgets := w.rescan, w.forgets
	w.rescan, w.forgets = false, nil
	w.mu.Unlock()
	if rescan {
		w.needScan = true
	}
	for _, rel := range forgets {
		w.s.remove(rel)
		w.lookAt(rel, w.abs(rel), false)
	}
}

// interval is the time to the next full scan: shorter while the root is
// missing, so that its return is noticed soon.
func (w *Watcher) interval() time.Duration {
	if w.healthy {
		return w.opts.Rescan
	}
	return min(w.opts.Rescan, maxRetry)
}

func (w *Watcher) setHealth(err error) {
	switch {
	case err != nil && w.healthy:
		w.healthy = false
		w.log.Warn("inbox unavailable, waiting for it", "err", err)
		w.opts.OnHealth(err)
	case err == nil && !w.healthy:
		w.healthy = true
		w.log.Info("inbox available again")
		w.opts.OnHealth(nil)
	}
}

// nextPending returns the next settled file to send, skipping those that
// changed, vanished or were forgotten while they waited.
func (w *Watcher) nextPending() (Ready, bool) {
	for ; w.head < len(w.pending); w.head++ {
		if r := w.pending[w.head]; w.s.current(r) {
			return r, true
		}
	}
	clear(w.pending)
	w.pending, w.head = w.pending[:0], 0
	return Ready{}, false
}
