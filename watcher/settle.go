package watcher

import (
	"container/heap"
	"io/fs"
	"strings"
	"time"
)

// ident is what makes a file "the same file" for settling and for the ledger:
// its size and modification time, and whether it is a symbolic link.
// The mtime is kept as seconds and nanoseconds because UnixNano is undefined
// outside 1678..2262 and Windows reports 1601 for a zero FILETIME.
type ident struct {
	size    int64
	sec     int64
	nsec    int32
	symlink bool
}

func identOf(fi fs.FileInfo) ident {
	mt := fi.ModTime()
	return ident{
		size:    fi.Size(),
		sec:     mt.Unix(),
		nsec:    int32(mt.Nanosecond()),
		symlink: linkLike(fi.Mode()),
	}
}

func identOfReady(r Ready) ident {
	return ident{size: r.Size, sec: r.ModTime.Unix(), nsec: int32(r.ModTime.Nanosecond()), symlink: r.Symlink}
}

// eligible reports whether the identity can ever be ready: an empty regular
// file is a copy that has not started writing yet.
func (id ident) eligible() bool { return id.size > 0 || id.symlink }

func (id ident) ready(rel string) Ready {
	return Ready{Rel: rel, Size: id.size, ModTime: time.Unix(id.sec, int64(id.nsec)), Symlink: id.symlink}
}

// entry is the per-file state; the inbox may keep 100,000 files after upload,
// so it holds no pointers and no copies of anything but the identity.
type entry struct {
	ident
	since   int64  // settler clock (ns since epoch) when this identity was first observed
	gen     uint32 // last full scan that saw the file
	emitted bool   // this identity has been handed out
	queued  bool   // an item for this entry is in the due heap
}

// settler decides when files are ready. It is a pure function of the
// observations and times it is given: no I/O, no clock, not safe for
// concurrent use.
type settler struct {
	quiet int64     // ns an identity must stay unchanged
	epoch time.Time // times are kept as ns since epoch: 8 bytes, monotonic
	files map[string]*entry
	queue dueHeap
}

func newSettler(quiet time.Duration, epoch time.Time) *settler {
	return &settler{quiet: int64(quiet), epoch: epoch, files: make(map[string]*entry)}
}

func (s *settler) ns(t time.Time) int64 { return int64(t.Sub(s.epoch)) }

// observe records rel's identity as seen at now. A new file or a changed
// identity (re)starts its quiet period; an old mtime proves nothing, since
// Explorer keeps the source's mtime on copy. It reports whether the identity
// differs from the previous observation (a new file counts as changed).
// rel is kept as a map key: it must not be a slice of a longer string.
func (s *settler) observe(rel string, id ident, now time.Time) (e *entry, changed bool) {
	e = s.files[rel]
	switch {
	case e == nil:
		e = &entry{ident: id, since: s.ns(now)}
		s.files[rel] = e
		changed = true
	case e.ident != id:
		e.ident, e.since, e.emitted = id, s.ns(now), false
		changed = true
	}
	// An unchanged entry can lose its heap item (its re-check failed): queue
	// it again so a scan is enough to recover it.
	if !e.queued && !e.emitted && e.eligible() {
		s.push(rel, e)
	}
	return e, changed
}

func (s *settler) push(rel string, e *entry) {
	e.queued = true
	heap.Push(&s.queue, dueItem{at: e.since + s.quiet, rel: rel, e: e})
}

// next reports when the earliest queued file may be due.
func (s *settler) next() (at time.Time, ok bool) {
	if len(s.queue) == 0 {
		return time.Time{}, false
	}
	return s.epoch.Add(time.Duration(s.queue[0].at)), true
}

// due returns the files whose recorded identity has been unchanged for the
// quiet period at now and that have not been emitted. They are candidates:
// the caller re-stats each and passes the result to check. A candidate whose
// check fails is not re-queued until it is observed again.
func (s *settler) due(now time.Time) []Ready {
	n := s.ns(now)
	var out []Ready
	for len(s.queue) > 0 && s.queue[0].at <= n {
		it := heap.Pop(&s.queue).(dueItem)
		e := s.files[it.rel]
		if e != it.e {
			continue // the file was removed (and maybe came back with its own item)
		}
		e.queued = false
		if e.emitted || !e.eligible() {
			continue
		}
		if at := e.since + s.quiet; at > n {
			s.push(it.rel, e) // changed after it was queued
			continue
		}
		out = append(out, e.ready(it.rel))
	}
	return out
}

// check records a fresh observation of rel. It returns the Ready to emit
// when the identity is the one first seen at least quiet ago and not yet
// emitted, and marks it emitted; otherwise it behaves as observe.
func (s *settler) check(rel string, id ident, now time.Time) (Ready, bool) {
	e := s.files[rel]
	if e != nil && e.ident == id && !e.emitted && id.eligible() && s.ns(now)-e.since >= s.quiet {
		e.emitted = true
		return id.ready(rel), true
	}
	s.observe(rel, id, now)
	return Ready{}, false
}

// current reports whether r is still what is known about r.Rel: a Ready
// waiting to be sent is dropped once the file changed, went or was forgotten.
func (s *settler) current(r Ready) bool {
	e := s.files[r.Rel]
	return e != nil && e.emitted && e.ident == identOfReady(r)
}

func (s *settler) remove(rel string) { delete(s.files, rel) }

// removeTree drops dir and everything tracked below it.
func (s *settler) removeTree(dir string) {
	delete(s.files, dir)
	prefix := dir + "/"
	for rel := range s.files {
		if strings.HasPrefix(rel, prefix) {
			delete(s.files, rel)
		}
	}
}

// sweep drops the files a full scan numbered gen did not see, except under
// the folders it could not read: those files may well still be there.
func (s *settler) sweep(gen uint32, unread []string) {
	for rel, e := range s.files {
		if e.gen != gen && !under(rel, unread) {
			delete(s.files, rel)
		}
	}
}

// under reports whether rel is one of dirs or inside one of them ("" is the root).
func under(rel string, dirs []string) bool {
	for _, d := range dirs {
		if d == "" || rel == d || strings.HasPrefix(rel, d) && rel[len(d)] == '/' {
			return true
		}
	}
	return false
}

type dueItem struct {
	at  int64
	rel string
	e   *entry // tells a stale item from the current file's
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = dueItem{}
	*h = old[:len(old)-1]
	return it
}
