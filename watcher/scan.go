package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fsnotify/fsnotify"

	"crmdrop/internal/fileid"
)

// walkState collects what one walk could not do; a full scan must not drop
// files it merely failed to see.
type walkState struct {
	unread   []string // folders (rel) that could not be listed
	firstErr error
	watchErr error // first failure to add a watch
	files    int
}

func (ws *walkState) fail(rel string, err error) {
	ws.unread = append(ws.unread, rel)
	if ws.firstErr == nil {
		ws.firstErr = err
	}
}

// fullScan walks the whole tree, adds any missing watch, observes every
// file and forgets those no longer there. If the root is missing or
// unreadable it changes nothing but the health.
func (w *Watcher) fullScan() {
	start := w.clock.Now()
	fi, err := os.Stat(w.root) // the root itself may be a link: the admin chose it
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s is not a folder", w.root)
	}
	if err != nil {
		w.setHealth(fmt.Errorf("inbox folder unavailable (is it mounted?): %w", err))
		return
	}
	w.gen++
	var ws walkState
	if err := w.walk(w.root, "", &ws); err != nil {
		w.setHealth(fmt.Errorf("inbox folder unreadable: %w", err))
		return
	}
	// A root that went away mid-walk made files look gone: keep them.
	if _, err := os.Stat(w.root); err != nil {
		w.setHealth(fmt.Errorf("inbox folder unavailable (is it mounted?): %w", err))
		return
	}
	w.setHealth(nil)
	w.s.sweep(w.gen, ws.unread)
	for rel, g := range w.dirs {
		if g != w.gen && !under(rel, ws.unread) {
			delete(w.dirs, rel) // its files went with the sweep
			w.unwatch(w.abs(rel))
		}
	}

	if msg := errString(ws.firstErr); msg != w.scanErr {
		w.scanErr = msg
		if msg != "" {
			w.log.Warn("scan could not read some folders; their files are kept as they were", "count", len(ws.unread), "err", ws.firstErr)
		}
	}
	if msg := errString(ws.watchErr); msg != w.watchErr {
		w.watchErr = msg
		if msg != "" {
			w.log.Warn("cannot watch some folders; their files are found by rescans only", "err", ws.watchErr, "fix", watchFix(ws.watchErr))
		}
	}
	w.log.Debug("scan done", "files", ws.files, "folders", len(w.dirs), "took", w.clock.Now().Sub(start))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// walk watches the folder abs (rel) and then lists it, in that order: a file
// created between the two is seen by one or the other. It recurses into
// sub-folders that Skip allows, never through links, and returns an error
// only when abs itself cannot be listed.
func (w *Watcher) walk(abs, rel string, ws *walkState) error {
	if w.fsw != nil {
		err := w.fsw.AddWith(abs, fsnotify.WithBufferSize(windowsBuffer))
		if err != nil && !gone(err) && ws.watchErr == nil {
			ws.watchErr = err
		}
	}
	f, err := os.Open(abs)
	if err != nil {
		return err
	}
	if rel != "" {
		// The folder may have been swapped for a link since it was listed:
		// Open followed it, Lstat does not.
		if err := sameDir(f, abs); err != nil {
			f.Close()
			w.unwatch(abs)
			return err
		}
	}
	ents, err := f.ReadDir(-1) // unsorted: order does not matter here
	f.Close()
	if err != nil && len(ents) == 0 {
		return err
	}
	if err != nil {
		ws.fail(rel, err) // a partial listing: keep what was not listed
	}
	w.dirs[rel] = w.gen

	for _, d := range ents {
		crel := d.Name()
		if rel != "" {
			crel = rel + "/" + crel
		}
		t := d.Type()
		switch {
		case t.IsDir():
			if w.opts.Skip(crel, true) {
				continue
			}
			if err := w.walk(join(abs, d.Name()), crel, ws); err != nil && !gone(err) {
				ws.fail(crel, err)
			}
		case t.IsRegular() || linkLike(t):
			if w.opts.Skip(crel, false) {
				continue
			}
			fi, err := d.Info()
			if err != nil {
				if !gone(err) {
					ws.fail(crel, err)
				}
				continue
			}
			if m := fi.Mode(); !m.IsRegular() && !linkLike(m) {
				continue // replaced since the listing
			}
			e, _ := w.s.observe(crel, identOf(fi), w.clock.Now())
			e.gen = w.gen
			ws.files++
		}
		// Fifos, sockets and devices are never opened: opening a fifo blocks.
	}
	return nil
}

func sameDir(f *os.File, abs string) error {
	opened, err := f.Stat()
	if err != nil {
		return err
	}
	listed, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if !listed.IsDir() || !os.SameFile(opened, listed) {
		return fmt.Errorf("%s changed while being scanned", abs)
	}
	return nil
}

// handleEvent turns a file event into a fresh look at the path it names.
func (w *Watcher) handleEvent(ev fsnotify.Event) {
	rel, ok := w.relOf(ev.Name)
	if !ok {
		return
	}
	if rel == "" {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.needScan = true // the scan reports the root missing, and retries
		}
		return
	}
	w.lookAt(rel, ev.Name, ev.Has(fsnotify.Create))
}

// lookAt observes one path. A folder is walked when it is created or not
// yet known, so that what was put in it before its watch existed is found.
func (w *Watcher) lookAt(rel, abs string, created bool) {
	fi, err := os.Lstat(abs)
	if err != nil {
		w.vanished(rel, err)
		return
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		w.s.remove(rel) // was it a file before?
		if w.opts.Skip(rel, true) {
			return
		}
		if _, known := w.dirs[rel]; created || !known {
			var ws walkState
			if err := w.walk(abs, rel, &ws); err != nil {
				w.log.Debug("cannot list new folder", "path", rel, "err", err)
			}
		}
	case m.IsRegular() || linkLike(m):
		if w.opts.Skip(rel, false) {
			return
		}
		if _, known := w.dirs[rel]; known {
			w.dropDir(rel) // a folder replaced by a file
		}
		w.s.observe(rel, identOf(fi), w.clock.Now())
	default:
		w.s.remove(rel)
	}
}

// vanished handles a path that could not be stat'ed. It forgets the path
// only if the root is still there: an unmounted share loses nothing.
func (w *Watcher) vanished(rel string, err error) {
	if !gone(err) {
		w.log.Debug("cannot stat", "path", rel, "err", err)
		return
	}
	if _, err := os.Stat(w.root); err != nil {
		w.needScan = true
		return
	}
	if _, known := w.dirs[rel]; known {
		w.dropDir(rel)
		return
	}
	w.s.remove(rel)
}

// dropDir forgets a folder that is gone, with everything below it.
func (w *Watcher) dropDir(rel string) {
	prefix := rel + "/"
	for d := range w.dirs {
		if d == rel || strings.HasPrefix(d, prefix) {
			delete(w.dirs, d)
			w.unwatch(w.abs(d))
		}
	}
	w.s.removeTree(rel)
}

func (w *Watcher) unwatch(abs string) {
	if w.fsw != nil {
		_ = w.fsw.Remove(abs) // usually gone with the folder already
	}
}

// settleDue re-stats the files whose quiet period has passed and queues
// those that are still what they were.
func (w *Watcher) settleDue() {
	now := w.clock.Now()
	for _, c := range w.s.due(now) {
		fi, err := os.Lstat(w.abs(c.Rel))
		if err != nil {
			w.vanished(c.Rel, err)
			continue
		}
		if m := fi.Mode(); !m.IsRegular() && !linkLike(m) {
			w.lookAt(c.Rel, w.abs(c.Rel), true)
			continue
		}
		if r, ok := w.s.check(c.Rel, identOf(fi), now); ok {
			r.FileID = fileid.Of(w.abs(c.Rel), fi)
			w.pending = append(w.pending, r)
		}
	}
}

func (w *Watcher) abs(rel string) string {
	if rel == "" {
		return w.root
	}
	return join(w.root, filepath.FromSlash(rel))
}

// relOf maps a path under the root, as fsnotify reports it, to its
// slash-separated relative path ("" for the root itself).
func (w *Watcher) relOf(abs string) (string, bool) {
	if abs == w.root {
		return "", true
	}
	prefix := w.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	rest, ok := strings.CutPrefix(abs, prefix)
	if !ok || rest == "" {
		return "", false
	}
	// A copy, not a slice of abs: rel becomes a long-lived map key.
	return strings.Clone(filepath.ToSlash(rest)), true
}

func join(dir, name string) string {
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return dir + name
	}
	return dir + string(filepath.Separator) + name
}

// linkLike reports a symbolic link, or on Windows a junction or other
// reparse point that is not a folder: things that may lead outside the tree.
func linkLike(m fs.FileMode) bool {
	return m&fs.ModeSymlink != 0 || m&fs.ModeIrregular != 0 && !m.IsDir()
}

// gone reports an error meaning the path is not there (any more).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// watchFix says what an admin can do about a failure to add a watch. inotify reports
// its per-user watch limit as ENOSPC, which reads as "no space left on device".
func watchFix(err error) string {
	if errors.Is(err, syscall.ENOSPC) {
		return "the system's limit of watched folders (fs.inotify.max_user_watches) is reached: raise it (sysctl -w fs.inotify.max_user_watches=524288, and in /etc/sysctl.d/ to keep it), or set watch: poll"
	}
	return "check the folder's permissions; until then new files there are picked up at the next rescan"
}
