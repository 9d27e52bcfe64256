// Package uploader makes one file's upload happen once: it opens and streams the file,
// retries transient failures with backoff behind a pacer shared by every worker,
// reconciles ambiguous attempts against the record's attachments before sending again,
// and pauses everyone while a global error stands. It knows nothing of the ledger or of
// Zoho's wire format: the daemon supplies both through Options.
package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Class says what a failed attempt allows the caller to do next.
type Class int

const (
	// Transient: nothing was stored; try again after a backoff.
	Transient Class = iota
	// Ambiguous: the request may have been stored; look before sending again.
	Ambiguous
	// Permanent: this file can never succeed as it is.
	Permanent
	// Global: nothing can succeed until an admin acts.
	Global
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Ambiguous:
		return "ambiguous"
	case Permanent:
		return "permanent"
	case Global:
		return "global"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Target is the record an attachment belongs to.
type Target struct{ Module, RecordID string }

// Attachment is one attachment a record already has, as the remote lists it.
type Attachment struct {
	ID      string
	Name    string
	Size    int64
	Link    string
	Created time.Time
}

// Remote is where attachments go. The daemon adapts *zoho.Client to it.
type Remote interface {
	UploadFile(ctx context.Context, dst Target, name string, size int64, open func() (io.ReadCloser, error)) (id string, err error)
	UploadLink(ctx context.Context, dst Target, link, title string) (id string, err error)
	List(ctx context.Context, dst Target) ([]Attachment, error)
	Delete(ctx context.Context, dst Target, id string) error
}

// Clock is the time source; tests drive a manual one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Job is one file to attach.
type Job struct {
	ID   string // the caller's name for the job, handed back to Begin
	Path string // on disk
	// Root, when set, is the inbox: the file is then opened as Rel through os.Root, so
	// no symlink (even a parent folder swapped for one after the watcher looked) can
	// lead the upload outside it.
	Root, Rel string
	Name      string // attachment file name, or the link's title
	Dst       Target
	Size      int64     // identity the file must still have when the upload ends
	ModTime   time.Time //
	Link      string    // non-empty: attach this URL instead of the file's bytes

	// Since is the start of an earlier attempt that may have been stored (a crash or an
	// ambiguous failure): the record is searched before anything is sent again.
	Since time.Time
}

// Result is a finished upload.
type Result struct {
	AttachmentID string
	SHA256       string // of the bytes sent; "" when adopted or a link
	Adopted      bool   // found on the record after an ambiguous attempt, not sent again
}

// ErrChanged means the file changed, moved or vanished during its upload: the upload
// must not count. The watcher will offer the file again once it settles.
var ErrChanged = errors.New("file changed while it was being uploaded")

// PermanentError is a failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Options configure an Uploader. Classify is required; the rest have working zero values.
type Options struct {
	Remote   Remote
	Classify func(error) (Class, time.Duration) // class and the server's wait hint
	// LinkExists reports an error that says the record already has this link: after an
	// ambiguous attempt that means the earlier attempt stored it.
	LinkExists func(error) bool
	// Claim reserves an attachment id for the job being reconciled and reports false if
	// the ledger or another job already holds it, so two files that look alike (same
	// name and size on one record) never adopt the same attachment. It must be atomic.
	Claim func(id string) bool
	// Begin is called before every send with its start time; the daemon commits the
	// entry as uploading (with that start) there, before the first byte goes out.
	Begin func(ctx context.Context, job Job, start time.Time) error

	InitialDelay time.Duration // default 2s
	MaxDelay     time.Duration // default 5m
	BlockedProbe time.Duration // default 2m
	ClockSkew    time.Duration // allowance when matching Created_Time, default 2m
	// StallTimeout ends an attempt whose body has not moved for this long (a server
	// that stopped reading), default 2m. The HTTP client's own timeouts cover the
	// connection and the wait for the answer, not a body that stops mid-way.
	StallTimeout time.Duration

	Clock     Clock
	Logger    *slog.Logger
	OnBlocked func(reason string) // "" when unblocked
	OnRetry   func(c Class, err error)
}

// Uploader runs uploads. It is safe for concurrent use by the worker pool; every
// worker shares its pacer and its gate.
type Uploader struct {
	o     Options
	pacer *pacer
	gate  *gate
}

// New returns an Uploader.
func New(o Options) (*Uploader, error) {
	if o.Remote == nil || o.Classify == nil {
		return nil, errors.New("uploader: Remote and Classify are required")
	}
	if o.InitialDelay <= 0 {
		o.InitialDelay = 2 * time.Second
	}
	if o.MaxDelay < o.InitialDelay {
		o.MaxDelay = max(5*time.Minute, o.InitialDelay)
	}
	if o.BlockedProbe <= 0 {
		o.BlockedProbe = 2 * time.Minute
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = 2 * time.Minute
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 2 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LinkExists == nil {
		o.LinkExists = func(error) bool { return false }
	}
	if o.Claim == nil {
		o.Claim = func(string) bool { return true }
	}
	if o.Begin == nil {
		o.Begin = func(context.Context, Job, time.Time) error { return nil }
	}
	return &Uploader{
		o:     o,
		pacer: newPacer(o.Clock, 100*time.Millisecond, o.MaxDelay),
		gate:  newGate(o.Clock, o.OnBlocked),
	}, nil
}

// Blocked returns why uploads are paused, "" when they are not.
func (u *Uploader) Blocked() string { return u.gate.blocked() }

// Throttles returns how many 429s the pacer has absorbed.
func (u *Uploader) Throttles() int {
	u.pacer.mu.Lock()
	defer u.pacer.mu.Unlock()
	return u.pacer.count
}

// Upload attaches job once. It retries transient failures without limit and waits out
// global ones, so it returns only with a result, ErrChanged, a *PermanentError, or
// ctx.Err() when ctx ends (the entry then stays "uploading" and the next start
// reconciles it).
func (u *Uploader) Upload(ctx context.Context, job Job) (Result, error) {
	since := job.Since
	for n := 1; ; n++ {
		probe, err := u.gate.wait(ctx)
		if err != nil {
			return Result{}, err
		}
		res, err := u.attempt(ctx, &job, &since)
		if err == nil || errors.Is(err, ErrChanged) || ctx.Err() != nil {
			if probe {
				if err == nil {
					u.gate.open()
				} else {
					u.gate.release()
				}
			}
			if ctx.Err() != nil && err != nil {
				return Result{}, ctx.Err()
			}
			return res, err
		}
		class, hint := u.o.Classify(err)
		if probe {
			if class == Global {
				u.gate.block(err.Error(), max(u.o.BlockedProbe, hint))
			} else {
				u.gate.open() // whatever this is, it is no longer the global error
			}
		}
		if class == Permanent && !since.IsZero() && job.Link != "" && u.o.LinkExists(err) {
			// The earlier, ambiguous attempt stored the link after all; find its id.
			if res, ok := u.reconcile(ctx, job, since); ok {
				return res, nil
			}
		}
		switch class {
		case Permanent:
			return Result{}, &PermanentError{Err: err}
		case Global:
			u.o.Logger.Debug("upload blocked", "path", job.Path, "err", err)
			if !probe {
				u.gate.block(err.Error(), max(u.o.BlockedProbe, hint))
			}
			n = 0 // a standing global error is not this file's fault: restart its backoff
			continue
		}
		if u.o.OnRetry != nil {
			u.o.OnRetry(class, err)
		}
		if hint > 0 {
			u.pacer.throttled(hint)
		}
		d := backoff(n, u.o.InitialDelay, u.o.MaxDelay, hint, rand.Float64())
		u.o.Logger.Warn("upload failed, will retry", "path", job.Path, "attempt", n, "class", class.String(), "wait", d, "err", err)
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-u.o.Clock.After(d):
		}
	}
}

// reconcile looks for an attachment an earlier attempt may have stored. Errors are
// treated as "not found yet" by the caller only after being classified; here a failed
// list means we cannot know, so ok is false.
func (u *Uploader) reconcile(ctx context.Context, job Job, since time.Time) (Result, bool) {
	id, ok, err := u.find(ctx, job, since)
	if err != nil || !ok {
		return Result{}, false
	}
	return Result{AttachmentID: id, Adopted: true}, true
}

// find lists the record and returns the earliest unclaimed attachment that matches job
// and was created no earlier than since minus the clock-skew allowance (Created_Time
// has one-second precision and comes from the server's clock).
func (u *Uploader) find(ctx context.Context, job Job, since time.Time) (string, bool, error) {
	list, err := u.o.Remote.List(ctx, job.Dst)
	if err != nil {
		return "", false, err
	}
	return match(list, job, since.Add(-u.o.ClockSkew), u.o.Claim)
}

// match returns the earliest attachment that looks like job, was created no earlier
// than notBefore, and can be claimed.
func match(list []Attachment, job Job, notBefore time.Time, claim func(string) bool) (string, bool, error) {
	var cands []Attachment
	for _, a := range list {
		same := a.Name == job.Name && a.Size == job.Size
		if job.Link != "" {
			same = a.Link == job.Link
		}
		if same && !a.Created.Before(notBefore) {
			cands = append(cands, a)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Created.Before(cands[j].Created) })
	for _, a := range cands {
		if claim(a.ID) {
			return a.ID, true, nil
		}
	}
	return "", false, nil
}

// attempt is one try: reconcile if an earlier try may have been stored, then send.
// On an ambiguous failure it sets *since so the next try looks first.
func (u *Uploader) attempt(ctx context.Context, job *Job, since *time.Time) (Result, error) {
	if err := u.pacer.wait(ctx); err != nil {
		return Result{}, err
	}
	if !since.IsZero() {
		id, ok, err := u.find(ctx, *job, *since)
		if err != nil {
			return Result{}, fmt.Errorf("list attachments of %s/%s: %w", job.Dst.Module, job.Dst.RecordID, err)
		}
		if ok {
			return Result{AttachmentID: id, Adopted: true}, nil
		}
	}
	start := u.o.Clock.Now()
	if err := u.o.Begin(ctx, *job, start); err != nil {
		return Result{}, err
	}
	res, err := u.send(ctx, *job)
	if err != nil {
		// Keep the earliest ambiguous start: a later search must still see what the
		// first uncertain attempt may have stored.
		if c, _ := u.o.Classify(err); c == Ambiguous && since.IsZero() {
			*since = start
		}
		return Result{}, err
	}
	u.pacer.succeeded()
	return res, nil
}

func (u *Uploader) send(ctx context.Context, job Job) (Result, error) {
	if job.Link != "" {
		id, err := u.o.Remote.UploadLink(ctx, job.Dst, job.Link, job.Name)
		if err != nil {
			return Result{}, err
		}
		return Result{AttachmentID: id}, nil
	}
	f := &fileSource{path: job.Path, root: job.Root, rel: job.Rel, size: job.Size, mtime: job.ModTime, clock: u.o.Clock}
	attemptCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go u.watchStall(attemptCtx, f, cancel)
	id, err := u.o.Remote.UploadFile(attemptCtx, job.Dst, job.Name, job.Size, f.open)
	if f.wasChanged() {
		return Result{}, ErrChanged
	}
	if err != nil {
		if ctx.Err() == nil && attemptCtx.Err() != nil {
			return Result{}, fmt.Errorf("upload stalled: no progress for %v: %w", u.o.StallTimeout, err)
		}
		return Result{}, err
	}
	// Re-stat after the bytes went out: if the file moved on, the upload does not count,
	// and what was stored (part old, part new) is taken back.
	if !f.unchanged() {
		if err := u.o.Remote.Delete(context.WithoutCancel(ctx), job.Dst, id); err != nil {
			u.o.Logger.Warn("could not remove the attachment of a file that changed during upload", "path", job.Path, "attachment_id", id, "err", err)
		}
		return Result{}, ErrChanged
	}
	return Result{AttachmentID: id, SHA256: f.sum()}, nil
}

// watchStall cancels the attempt when its body stops moving for StallTimeout.
func (u *Uploader) watchStall(ctx context.Context, f *fileSource, cancel func()) {
	tick := u.o.StallTimeout / 4
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.o.Clock.After(tick):
		}
		if f.stalled(u.o.Clock.Now(), u.o.StallTimeout) {
			cancel()
			return
		}
	}
}

// fileSource opens the file for each HTTP attempt, refusing anything that is no longer
// the regular file the watcher settled on (a symlink swapped in, a new size or mtime).
// The HTTP client reads the body on its own goroutine, so the fields it touches are
// guarded by mu.
type fileSource struct {
	path  string
	root  string
	rel   string
	size  int64
	mtime time.Time

	clock Clock

	mu       sync.Mutex
	changed  bool
	progress time.Time // last time bytes moved (or the file was opened)
	h        hash.Hash
	opened   bool
	n        int64
}

func (f *fileSource) wasChanged() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fileSource) open() (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lstat, open := os.Lstat, os.Open
	name := f.path
	if f.root != "" {
		root, err := os.OpenRoot(f.root)
		if err != nil {
			return nil, fmt.Errorf("open inbox: %w", err)
		}
		defer root.Close()
		lstat, open, name = root.Lstat, root.Open, filepath.FromSlash(f.rel)
	}
	before, err := lstat(name)
	if err != nil || !before.Mode().IsRegular() || before.Size() != f.size || !before.ModTime().Equal(f.mtime) {
		f.changed = true
		return nil, ErrChanged
	}
	file, err := open(name)
	if err != nil {
		f.changed = true
		return nil, ErrChanged
	}
	opened, err := file.Stat()
	if err != nil || !os.SameFile(before, opened) {
		file.Close()
		f.changed = true
		return nil, ErrChanged
	}
	f.h = sha256.New()
	f.n = 0
	f.progress = f.clock.Now()
	f.opened = true
	return &hashingReader{f: f, file: file, r: io.LimitReader(file, f.size+1)}, nil
}

// unchanged reports whether the bytes sent are the file as it still is. A file gone
// after every byte was read still counts: what was sent was whole. A stat that fails
// for another reason (a share's hiccup) is not taken as a change either, since that
// would delete a good attachment and send the file again.
func (f *fileSource) unchanged() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.opened || f.n != f.size {
		return false
	}
	after, err := os.Lstat(f.path)
	if err != nil {
		return true
	}
	return after.Size() == f.size && after.ModTime().Equal(f.mtime)
}

// stalled reports an opened body that is not finished and has not moved for limit.
func (f *fileSource) stalled(now time.Time, limit time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened && f.n < f.size && now.Sub(f.progress) > limit
}

func (f *fileSource) sum() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return hex.EncodeToString(f.h.Sum(nil))
}

type hashingReader struct {
	f    *fileSource
	file *os.File
	r    io.Reader
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.h.Write(p[:n])
	h.f.n += int64(n)
	if n > 0 {
		h.f.progress = h.f.clock.Now()
	}
	if h.f.n > h.f.size {
		h.f.changed = true
		return n, ErrChanged
	}
	if err == io.EOF && h.f.n < h.f.size {
		h.f.changed = true
		return n, ErrChanged
	}
	return n, err
}

func (h *hashingReader) Close() error { return h.file.Close() }
