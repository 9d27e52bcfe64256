// Package daemon wires the watcher, the ledger, the uploader and the Zoho client into
// the running service: it decides every state change of a file, owns the worker pool,
// and moves files to _uploaded/ and _failed/.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"crmdrop/admin"
	"crmdrop/config"
	"crmdrop/inbox"
	"crmdrop/store"
	"crmdrop/uploader"
	"crmdrop/watcher"
	"crmdrop/zoho"
)

// Clock is the daemon's time source; it satisfies both the watcher's and the
// uploader's Clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Event tells an observer (the demo, tests) that a file reached an end state.
type Event struct {
	Kind         string // "uploaded" or "failed"
	Path         string // relative to the inbox, slash-separated
	Module       string
	RecordID     string
	AttachmentID string
	Adopted      bool   // found on the record after an uncertain attempt, not sent again
	Reason       string // for "failed"
}

// Options configure a Daemon. Config is required.
type Options struct {
	Config     config.Config
	Logger     *slog.Logger
	Clock      Clock
	HTTPClient *http.Client
	OnEvent    func(Event) // called from worker goroutines; must not block long
	Version    string      // reported by /api/status
}

// Daemon is one running crmdrop. Create it with New, run it with Run, then Close it.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	clock   Clock
	events  func(Event)
	version string
	started time.Time
	metrics *admin.Metrics
	reg     *prometheus.Registry

	ledger *store.Store
	layout *inbox.Layout
	zc     *zoho.Client
	up     *uploader.Uploader
	watch  *watcher.Watcher
	q      *queue

	mu       sync.Mutex
	busy     map[string]bool     // paths queued or uploading
	lookBusy map[string]string   // lookalike key (record, name, size) -> the busy path holding it
	deferred map[string]deferral // by path: files waiting for a busy path or lookalike
	inflight map[string]admin.InFlight
	claimed  map[string]bool // attachment ids adopted in this run

	moveMu    sync.Mutex     // one move at a time: the collision check and the rename are two steps
	failMu    sync.Mutex     // guards moveFails and runCtx; taken under mu (handle calls fail)
	moveFails map[string]int // by path: moves that failed in a row, for the backoff
	runCtx    context.Context
	inboxErr  string
	blocked   string
}

// LedgerPath is where the ledger lives for a config.
func LedgerPath(cfg config.Config) string { return filepath.Join(cfg.StateDir, "ledger.db") }

// TokenCachePath is where the access token is kept between restarts.
func TokenCachePath(cfg config.Config) string { return filepath.Join(cfg.StateDir, "token.json") }

// ZohoOptions are the client options a configuration sets: endpoints and credentials.
func ZohoOptions(cfg config.Config) zoho.Options {
	accounts, api := cfg.Zoho.Endpoints()
	return zoho.Options{
		AccountsURL:      accounts,
		APIDomain:        cfg.Zoho.APIDomain,
		DefaultAPIDomain: api,
		APIVersion:       cfg.Zoho.APIVersion,
		ClientID:         cfg.Zoho.ClientID,
		ClientSecret:     cfg.Zoho.ClientSecret,
		RefreshToken:     cfg.Zoho.RefreshToken,
	}
}

// New opens the ledger (failing fast if another crmdrop holds it) and builds the parts.
// Nothing touches the inbox or the network until Run.
func New(o Options) (*Daemon, error) {
	cfg := o.Config
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	ledger, lost, err := store.OpenOrRecover(LedgerPath(cfg), store.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if lost != nil {
		// Until the recovery pass exists, files already attached may be sent again; say
		// so plainly rather than let the service stay down on an unreadable ledger.
		o.Logger.Error("ledger could not be read; moved aside and started a fresh one", "reason", lost.Reason, "moved_to", lost.MovedAside)
	}
	d := &Daemon{
		cfg:      cfg,
		log:      o.Logger,
		clock:    o.Clock,
		events:   o.OnEvent,
		version:  o.Version,
		reg:      prometheus.NewRegistry(),
		inflight: map[string]admin.InFlight{},
		claimed:  map[string]bool{},
		ledger:   ledger,
		layout:   inbox.NewLayout(cfg.CustomModules),
		q:        newQueue(),
		busy:     map[string]bool{},
		lookBusy: map[string]string{},
		deferred: map[string]deferral{},

		moveFails: map[string]int{},
		runCtx:    context.Background(),
	}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = admin.NewMetrics(d.reg, func() float64 { return float64(d.q.len()) })
	zo := ZohoOptions(cfg)
	zo.TokenCache = TokenCachePath(cfg)
	zo.HTTPClient = o.HTTPClient
	zo.Clock = o.Clock
	zo.Logger = o.Logger
	zo.OnMint = d.metrics.TokensMinted.Inc
	d.zc, err = zoho.New(zo)
	if err != nil {
		ledger.Close()
		return nil, err
	}
	d.up, err = uploader.New(uploader.Options{
		Remote:       remote{d.zc},
		Classify:     classify,
		LinkExists:   zoho.IsLinkExists,
		Claim:        d.claim,
		Begin:        d.begin,
		InitialDelay: cfg.Retry.InitialDelay,
		MaxDelay:     cfg.Retry.MaxDelay,
		BlockedProbe: cfg.Retry.BlockedProbe,
		Clock:        o.Clock,
		Logger:       o.Logger,
		OnBlocked:    d.setBlocked,
		OnRetry:      d.onRetry,
	})
	if err != nil {
		ledger.Close()
		return nil, err
	}
	d.watch, err = watcher.New(watcher.Options{
		Root:     cfg.Inbox,
		Settle:   cfg.Settle,
		Rescan:   cfg.RescanInterval,
		Poll:     cfg.Watch == "poll",
		Skip:     func(rel string, isDir bool) bool { return inbox.Skip(rel, isDir, cfg.Ignore) },
		Clock:    o.Clock,
		Logger:   o.Logger,
		OnHealth: d.setInboxHealth,
	})
	if err != nil {
		ledger.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the ledger. Call it after Run has returned.
func (d *Daemon) Close() error { return d.ledger.Close() }

// Run watches and uploads until ctx ends. Uploads in flight at that moment stay
// "uploading" in the ledger and are reconciled at the next start, so a stop never
// loses or doubles a file. Run returns nil after a requested stop.
func (d *Daemon) Run(ctx context.Context) error {
	var ln net.Listener
	if d.cfg.AdminListen != "" {
		var err error
		if ln, err = admin.Listen(d.cfg.AdminListen); err != nil {
			return err
		}
	}
	d.started = d.clock.Now()
	d.failMu.Lock()
	d.runCtx = ctx
	d.failMu.Unlock()
	d.forgetVanished()
	ready := make(chan watcher.Ready, 256)
	g, ctx := errgroup.WithContext(ctx)
	if ln != nil {
		h := admin.NewHandler(d, d.reg)
		g.Go(func() error { return admin.ServeListener(ctx, ln, h, d.log) })
	}
	g.Go(func() error { return d.watch.Run(ctx, ready) })
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case r := <-ready:
				d.handle(r)
			}
		}
	})
	for range max(d.cfg.Workers, 1) {
		g.Go(func() error {
			for {
				e, ok := d.q.pop(ctx)
				if !ok {
					return ctx.Err()
				}
				d.process(ctx, e)
			}
		})
	}
	d.log.Info("crmdrop started", "inbox", d.cfg.Inbox, "workers", d.cfg.Workers, "watch", d.cfg.Watch)
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	d.log.Info("crmdrop stopped")
	return nil
}

// forgetVanished drops pending entries whose file is no longer there as it was
// (deleted or replaced while the daemon was down). Nothing was sent for them. Entries
// left "uploading" are kept whatever the inbox shows: an unmounted share can look like
// an empty folder, and forgetting an attempt that may have been stored is how a file
// gets attached twice when it comes back.
func (d *Daemon) forgetVanished() {
	if _, err := os.Stat(d.cfg.Inbox); err != nil {
		return
	}
	entries, err := d.ledger.ByState(store.Pending, 0)
	if err != nil {
		d.log.Error("read ledger", "err", err)
		return
	}
	for _, e := range entries {
		fi, err := os.Lstat(d.abs(e.Path))
		if err == nil && fi.Size() == e.Size && fi.ModTime().Equal(e.ModTime) {
			continue // the watcher's first scan offers it again
		}
		d.log.Info("file gone before its upload began, forgetting it", "path", e.Path)
		if err := d.ledger.Delete(e.Key()); err != nil {
			d.log.Error("update ledger", "path", e.Path, "err", err)
		}
	}
}

func (d *Daemon) abs(rel string) string { return filepath.Join(d.cfg.Inbox, filepath.FromSlash(rel)) }

// handle decides what a settled file needs. It runs on the dispatch goroutine and on
// workers replaying a deferred file, so it holds d.mu.
func (d *Daemon) handle(r watcher.Ready) {
	// The local rules read .url files: do that I/O before taking the lock every worker
	// needs, so a slow share (or a FIFO swapped in) cannot stall them.
	c := d.check(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[r.Rel] {
		d.deferred[r.Rel] = deferral{r: r}
		return
	}
	now := d.clock.Now()
	e := store.Entry{Path: r.Rel, Size: r.Size, ModTime: r.ModTime, FileID: r.FileID}
	old, found, err := d.ledger.Get(e.Key())
	if err != nil {
		d.log.Error("read ledger", "path", r.Rel, "err", err)
		return
	}
	if !found && r.FileID != "" {
		prev, ok, err := d.ledger.ByFileID(r.FileID)
		if err != nil {
			d.log.Error("read ledger", "path", r.Rel, "err", err)
			return
		}
		// The identity alone is never trusted: some network file systems reuse or zero
		// it. Size and mtime must match too (a rename keeps both).
		if ok && prev.Path != r.Rel && prev.Size == r.Size && prev.ModTime.Equal(r.ModTime) {
			if d.busy[prev.Path] {
				d.deferred[r.Rel] = deferral{r: r, waitPath: prev.Path}
				return
			}
			if d.renamed(r, c, prev, now) {
				return
			}
		}
	}
	if found {
		switch old.State {
		case store.Uploaded:
			if !placed(old) {
				d.afterUpload(old) // a stop between commit and move: finish it
				return
			}
			// Moved or deleted already, yet here again with the same name, size and
			// time: staff dropped the same file again (an Explorer copy keeps the
			// time), and asked for it to be attached. Do so rather than swallow it.
			d.log.Info("file dropped again after it was uploaded; uploading it again", "path", r.Rel, "earlier_attachment_id", old.AttachmentID)
		case store.Pending, store.Uploading:
			d.enqueue(r, old)
			return
		case store.Failed:
			if !placed(old) {
				// Refused, but its move to _failed/ has not happened: only the move is
				// owed. Sending it again would spend API calls on every settle, forever.
				d.fail(old, failedReason(c, old))
				return
			}
		}
		// Failed (or done) and back in a record folder: staff asked for another try.
		e.Created = old.Created
	} else {
		e.Created = now
	}
	e.Updated = now
	t, link, why := c.target, c.link, c.why
	e.Module, e.RecordID, e.Link = t.Module, t.RecordID, link
	if why != nil {
		e.State = store.Failed
		e.LastError = why.What
		if err := d.ledger.Put(e); err != nil {
			d.log.Error("update ledger", "path", r.Rel, "err", err)
			return
		}
		d.fail(e, *why)
		return
	}
	e.State = store.Pending
	if err := d.ledger.Put(e); err != nil {
		d.log.Error("update ledger", "path", r.Rel, "err", err)
		return
	}
	d.metrics.Discovered.Inc()
	d.log.Info("file queued", "path", r.Rel, "module", e.Module, "record", e.RecordID, "size", e.Size)
	d.enqueue(r, e)
}

// deferral is a settled file waiting until a busy path, or a busy lookalike, is free.
type deferral struct {
	r        watcher.Ready
	look     string // the lookalike key it waits on; "" when it waits on its own path
	waitPath string // the busy entry it was renamed from, when it waits on that
}

// lookalike keys the files that reconciliation cannot tell apart: same record, same
// name and size (or same link). Two of them never upload at once, or one could adopt
// the attachment the other just stored.
func lookalike(e store.Entry) string {
	if e.Link != "" {
		return e.Module + "\x00" + e.RecordID + "\x00link\x00" + e.Link
	}
	return e.Module + "\x00" + e.RecordID + "\x00" + path.Base(e.Path) + "\x00" + strconv.FormatInt(e.Size, 10)
}

// enqueue hands e to the workers unless a lookalike is in flight; then it waits.
// The caller holds d.mu.
func (d *Daemon) enqueue(r watcher.Ready, e store.Entry) {
	look := lookalike(e)
	if owner, ok := d.lookBusy[look]; ok && owner != e.Path {
		d.deferred[e.Path] = deferral{r: r, look: look}
		return
	}
	d.busy[e.Path] = true
	d.lookBusy[look] = e.Path
	d.q.push(e)
}

// checked is what the local rules say of a settled file.
type checked struct {
	target inbox.Target
	link   string        // for a .url file: the URL it holds
	why    *inbox.Reason // non-nil: refused without asking the API
}

// check applies every rule that can be decided without the API.
func (d *Daemon) check(r watcher.Ready) checked {
	t, link, why := d.rules(r)
	return checked{target: t, link: link, why: why}
}

func (d *Daemon) rules(r watcher.Ready) (inbox.Target, string, *inbox.Reason) {
	if r.Symlink {
		return inbox.Target{}, "", &inbox.Reason{
			What: "This is a link (shortcut) to a file elsewhere, not a file. crmdrop never follows links, so nothing outside the inbox can be uploaded by mistake.",
			Fix:  "Copy the file itself (not a link to it) into the record folder.",
		}
	}
	t, err := d.layout.Parse(r.Rel)
	if err != nil {
		var pe *inbox.PathError
		if errors.As(err, &pe) {
			return t, "", &inbox.Reason{What: pe.Problem, Fix: pe.Fix}
		}
		return t, "", &inbox.Reason{What: err.Error(), Fix: "Put the file in a folder <Module>/<record id>/, such as Leads/1000000231009/."}
	}
	name := path.Base(r.Rel)
	if strings.EqualFold(path.Ext(name), ".exe") {
		return t, "", &inbox.Reason{
			What: "Zoho CRM does not accept programs (.exe files) as attachments.",
			Fix:  "If you need to share it, put it in a .zip file first and drop the .zip into the record folder.",
		}
	}
	if r.Size > d.cfg.MaxFileSize {
		return t, "", &inbox.Reason{
			What: fmt.Sprintf("The file is %s, more than the %s Zoho CRM accepts for one attachment.", sizeText(r.Size), sizeText(d.cfg.MaxFileSize)),
			Fix:  "Make the file smaller (scan at a lower resolution, compress it, or split it) and drop it again.",
		}
	}
	if strings.EqualFold(path.Ext(name), ".url") {
		var link string
		err := withFS(d.cfg.Inbox, func(root *inbox.FS) (err error) {
			link, err = root.ReadURL(r.Rel)
			return err
		})
		if errors.Is(err, inbox.ErrLink) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return t, "", &inbox.Reason{What: "The shortcut could not be read: " + err.Error(), Fix: "Check the file's permissions and drop it again."}
		}
		if err != nil {
			return t, "", &inbox.Reason{What: err.Error(), Fix: "Create the shortcut again by dragging the address from the browser into the folder."}
		}
		return t, link, nil
	}
	return t, "", nil
}

// process runs one entry's upload on a worker and records where it ended.
func (d *Daemon) process(ctx context.Context, e store.Entry) {
	defer d.release(e)
	job := uploader.Job{
		ID:      e.Key(),
		Path:    d.abs(e.Path),
		Root:    d.cfg.Inbox,
		Rel:     e.Path,
		Name:    path.Base(e.Path),
		Dst:     uploader.Target{Module: e.Module, RecordID: e.RecordID},
		Size:    e.Size,
		ModTime: e.ModTime,
		Link:    e.Link,
	}
	if e.Link != "" {
		job.Name = inbox.LinkTitle(job.Name)
	}
	if e.State == store.Uploading {
		job.Since = e.AttemptStart // an attempt was cut short: look before sending again
	}
	began := d.clock.Now()
	d.metrics.InFlight.Inc()
	res, err := d.up.Upload(ctx, job)
	d.metrics.InFlight.Dec()
	if err != nil && ctx.Err() != nil {
		return // stays as the ledger says; reconciled at the next start
	}
	d.metrics.Duration.Observe(d.clock.Now().Sub(began).Seconds())
	cur, found, gerr := d.ledger.Get(e.Key())
	if gerr == nil && found {
		e = cur
	}
	e.Updated = d.clock.Now()
	var perm *uploader.PermanentError
	switch {
	case err == nil:
		e.State = store.Uploaded
		e.AttachmentID = res.AttachmentID
		e.SHA256 = res.SHA256
		e.LastError = ""
		if err := d.ledger.Put(e); err != nil {
			d.log.Error("update ledger", "path", e.Path, "err", err)
			return
		}
		if res.Adopted {
			d.metrics.Uploads.WithLabelValues(admin.ResultAdopted).Inc()
		} else {
			d.metrics.Uploads.WithLabelValues(admin.ResultUploaded).Inc()
			d.metrics.Bytes.Add(float64(e.Size))
		}
		d.log.Info("file uploaded", "path", e.Path, "module", e.Module, "record", e.RecordID, "attachment_id", e.AttachmentID, "adopted", res.Adopted)
		d.afterUpload(e)
		d.emit(Event{Kind: "uploaded", Path: e.Path, Module: e.Module, RecordID: e.RecordID, AttachmentID: e.AttachmentID, Adopted: res.Adopted})
	case errors.Is(err, uploader.ErrChanged) && d.vanished(e):
		// Renamed or moved away mid-upload: keep the entry as it stands (an attempt may
		// have been stored), so the file, found again by its identity, finishes as this
		// one file. One that was deleted stays until the next start reconciles it.
		d.log.Info("file moved away during upload; it continues where it is found", "path", e.Path)
	case errors.Is(err, uploader.ErrChanged):
		d.metrics.Uploads.WithLabelValues(admin.ResultChanged).Inc()
		d.log.Info("file changed during upload, will take it again once it settles", "path", e.Path)
		if err := d.ledger.Delete(e.Key()); err != nil {
			d.log.Error("update ledger", "path", e.Path, "err", err)
		}
		d.watch.Forget(e.Path)
	case errors.As(err, &perm):
		e.State = store.Failed
		e.LastError = perm.Error()
		if err := d.ledger.Put(e); err != nil {
			d.log.Error("update ledger", "path", e.Path, "err", err)
			return
		}
		d.metrics.Uploads.WithLabelValues(admin.ResultFailed).Inc()
		d.fail(e, apiReason(e, perm.Err))
	default:
		d.log.Error("upload stopped", "path", e.Path, "err", err)
	}
}

// release marks e's path free and replays what waited on it: a newer version of the
// same path, or lookalikes.
func (d *Daemon) release(e store.Entry) {
	look := lookalike(e)
	d.mu.Lock()
	delete(d.busy, e.Path)
	delete(d.inflight, e.Path)
	if d.lookBusy[look] == e.Path {
		delete(d.lookBusy, look)
	}
	var replay []watcher.Ready
	for p, w := range d.deferred {
		if p == e.Path || w.look == look || w.waitPath == e.Path {
			replay = append(replay, w.r)
			delete(d.deferred, p)
		}
	}
	d.mu.Unlock()
	for _, r := range replay {
		d.handle(r)
	}
}

// begin commits the entry as uploading, with this attempt's start, before any byte is
// sent: after a crash the next start knows to look on the record first.
func (d *Daemon) begin(_ context.Context, job uploader.Job, start time.Time) error {
	e, ok, err := d.ledger.Get(job.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("ledger entry for %s disappeared", job.Path)
	}
	if e.State != store.Uploading || e.AttemptStart.IsZero() {
		e.AttemptStart = start // keep the earliest start of an uncertain run
	}
	e.State = store.Uploading
	e.Attempts++
	e.Updated = start
	if err := d.ledger.Put(e); err != nil {
		return err
	}
	d.mu.Lock()
	d.inflight[e.Path] = admin.InFlight{Path: e.Path, Module: e.Module, RecordID: e.RecordID, Attempts: e.Attempts, Since: start}
	d.mu.Unlock()
	return nil
}

func (d *Daemon) onRetry(c uploader.Class, err error) {
	label := admin.ClassTransient
	if c == uploader.Ambiguous {
		label = admin.ClassAmbiguous
	}
	d.metrics.Retries.WithLabelValues(label).Inc()
	var ae *zoho.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		d.metrics.Throttled.Inc()
	}
}

// claim reserves an attachment id for one reconciliation. An id recorded in the
// ledger, or claimed by another worker whose commit has not landed yet, is refused.
func (d *Daemon) claim(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.claimed[id] {
		return false
	}
	if taken, err := d.ledger.AttachmentTaken(id); taken || err != nil {
		return false // when in doubt, do not adopt
	}
	d.claimed[id] = true
	return true
}

// afterUpload moves or deletes the file that was uploaded, and only that file: if the
// path now holds another version, it is left for the watcher to offer as new. A move
// that fails (a file held open on Windows) is offered again by the watcher.
func (d *Daemon) afterUpload(e store.Entry) {
	switch d.cfg.AfterUpload {
	case "move":
		dst, err := d.moveUnder(inbox.UploadedDir, e)
		if err != nil {
			d.retryMove(e, "move uploaded file, will try again", err)
			return
		}
		d.moved(e.Path)
		d.recordMove(e, dst)
	case "delete":
		d.moveMu.Lock()
		defer d.moveMu.Unlock()
		if !d.same(e) {
			return
		}
		if err := withFS(d.cfg.Inbox, func(root *inbox.FS) error { return root.Remove(e.Path) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.retryMove(e, "delete uploaded file, will try again", err)
			return
		}
		d.moved(e.Path)
		e.Placement, e.MovedTo = store.Deleted, ""
		if err := d.ledger.Put(e); err != nil {
			d.log.Error("update ledger", "path", e.Path, "err", err)
		}
	}
}

// placed reports whether e's file was moved or deleted after its end state. Entries of
// older builds said so with MovedTo alone, so a non-empty MovedTo counts as well.
func placed(e store.Entry) bool {
	return e.Placement == store.Moved || e.Placement == store.Deleted || e.MovedTo != ""
}

// same reports whether the inbox still holds the version e describes.
func (d *Daemon) same(e store.Entry) bool {
	fi, err := os.Lstat(d.abs(e.Path))
	return err == nil && fi.Size() == e.Size && fi.ModTime().Equal(e.ModTime)
}

// moveUnder moves e's file to top/<its path> if the inbox still holds that version.
// It returns "" when there was nothing of that version to move.
func (d *Daemon) moveUnder(top string, e store.Entry) (string, error) {
	d.moveMu.Lock()
	defer d.moveMu.Unlock()
	if !d.same(e) {
		return "", nil
	}
	return moveUnder(d.cfg.Inbox, top, e.Path)
}

// recordMove notes where the file went, for `list` and `retry`. The state change it
// follows was committed before the move; this is only a label.
func (d *Daemon) recordMove(e store.Entry, dst string) {
	if dst == "" {
		return
	}
	e.Placement, e.MovedTo = store.Moved, dst
	if err := d.ledger.Put(e); err != nil {
		d.log.Error("update ledger", "path", e.Path, "err", err)
	}
}

func (d *Daemon) fail(e store.Entry, why inbox.Reason) {
	d.log.Warn("file failed", "path", e.Path, "reason", why.What)
	dst, err := d.moveUnder(inbox.FailedDir, e)
	if err != nil {
		d.retryMove(e, "move failed file, will try again", err)
		return
	}
	d.moved(e.Path)
	if dst != "" {
		err := withFS(d.cfg.Inbox, func(root *inbox.FS) error { return root.WriteReason(dst, e.Path, why, d.clock.Now()) })
		if err != nil && !errors.Is(err, fs.ErrExist) {
			d.log.Error("write error file", "path", e.Path, "err", err)
		}
		d.recordMove(e, dst)
	}
	d.emit(Event{Kind: "failed", Path: e.Path, Module: e.Module, RecordID: e.RecordID, Reason: why.What})
}

func (d *Daemon) emit(ev Event) {
	if d.events != nil {
		d.events(ev)
	}
}

func (d *Daemon) setBlocked(reason string) {
	d.mu.Lock()
	d.blocked = reason
	d.mu.Unlock()
	d.updateBlockedGauge()
	if reason == "" {
		d.log.Info("uploads resumed")
	} else {
		d.log.Error("uploads paused until an admin acts", "reason", reason, "probe_every", d.cfg.Retry.BlockedProbe)
	}
}

func (d *Daemon) setInboxHealth(err error) {
	d.mu.Lock()
	if err == nil {
		d.inboxErr = ""
	} else {
		d.inboxErr = "inbox unavailable: " + err.Error()
	}
	d.mu.Unlock()
	d.updateBlockedGauge()
	if err != nil {
		d.log.Error("inbox unavailable, waiting for it to come back", "inbox", d.cfg.Inbox, "err", err)
	} else {
		d.log.Info("inbox available")
	}
}

// Blocked returns why the daemon cannot make progress, "" when it can.
func (d *Daemon) Blocked() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inboxErr != "" && d.blocked != "" {
		return d.inboxErr + "; " + d.blocked
	}
	return d.inboxErr + d.blocked
}

func (d *Daemon) updateBlockedGauge() {
	if d.Blocked() != "" {
		d.metrics.Blocked.Set(1)
	} else {
		d.metrics.Blocked.Set(0)
	}
}

func sizeText(n int64) string {
	const mib = 1 << 20
	if n >= mib {
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	}
	return fmt.Sprintf("%d bytes", n)
}

// retryMove offers a file whose move (or delete) failed to the watcher again after a
// backoff, so a _failed/ that cannot be created costs a log line per try and no API
// call: the file's ledger state already says it is done with Zoho.
func (d *Daemon) retryMove(e store.Entry, msg string, err error) {
	d.failMu.Lock()
	n := d.moveFails[e.Path] + 1
	d.moveFails[e.Path] = n
	ctx := d.runCtx
	d.failMu.Unlock()
	wait := moveBackoff(n, d.cfg.Retry.InitialDelay, d.cfg.Retry.MaxDelay)
	d.log.Error(msg, "path", e.Path, "attempt", n, "wait", wait, "err", err)
	go func() {
		select {
		case <-ctx.Done():
		case <-d.clock.After(wait):
			d.watch.Forget(e.Path)
		}
	}()
}

// moved ends a run of failed moves of rel.
func (d *Daemon) moved(rel string) {
	d.failMu.Lock()
	delete(d.moveFails, rel)
	d.failMu.Unlock()
}

// failedReason is the reason file's text for a refused file whose move is retried: the
// local rules again if they refuse it, else what the API said.
func failedReason(c checked, e store.Entry) inbox.Reason {
	if c.why != nil {
		return *c.why
	}
	return inbox.Reason{What: e.LastError, Fix: "Ask your administrator to look at crmdrop's log for this file."}
}

// moveBackoff doubles from initial per failed move, capped at max. No jitter: moves
// are local and nobody else competes for them.
func moveBackoff(n int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// vanished reports that nothing is at e's path any more (as opposed to a new version).
func (d *Daemon) vanished(e store.Entry) bool {
	_, err := os.Lstat(d.abs(e.Path))
	return errors.Is(err, fs.ErrNotExist)
}

// renamed handles a settled file that is a ledger entry's file under a new name or in
// a new folder (same identity, size and mtime). Within the same record it is the same
// file: the entry follows it and nothing is attached again. It reports false when the
// file is to be treated as newly dropped: moved into another record (staff's latest
// intent), or back from _uploaded/ or _failed/. The caller holds d.mu; prev is not busy.
func (d *Daemon) renamed(r watcher.Ready, c checked, prev store.Entry, now time.Time) bool {
	if c.why != nil {
		return false // refused where it is now, as any such file
	}
	t := c.target
	sameRecord := t.Module == prev.Module && t.RecordID == prev.RecordID
	if placed(prev) || !sameRecord {
		if prev.State == store.Pending {
			// Nothing was sent for it: the old entry has no more meaning.
			if err := d.ledger.Delete(prev.Key()); err != nil {
				d.log.Error("update ledger", "path", prev.Path, "err", err)
			}
		}
		return false
	}
	next := prev
	next.Path, next.Updated = r.Rel, now
	if err := d.ledger.Rekey(prev.Key(), next); err != nil {
		d.log.Error("update ledger", "path", r.Rel, "err", err)
		return true // the watcher offers it again after Forget; nothing was decided
	}
	d.log.Info("file renamed or moved within its record; same file", "from", prev.Path, "path", r.Rel, "state", string(prev.State))
	switch next.State {
	case store.Pending, store.Uploading:
		d.enqueue(r, next)
	case store.Uploaded:
		d.afterUpload(next)
	case store.Failed:
		d.fail(next, failedReason(c, next))
	}
	return true
}
