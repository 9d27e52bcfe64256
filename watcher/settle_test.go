package watcher

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// step is one call on a settler; at is the time since t0.
type step struct {
	at   time.Duration
	op   string // observe, check, due, remove, removeTree
	rel  string
	size int64
	mt   int64 // mtime, Unix seconds
	link bool
	// For due: the candidates (rel:size). For check: whether it emits.
	want []string
	emit bool
}

func TestSettler(t *testing.T) {
	const quiet = 5 * time.Second
	old := int64(978307200) // 2001: an Explorer copy keeps the source's mtime
	tests := []struct {
		name  string
		steps []step
	}{
		{"new file settles once", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 4 * time.Second, op: "due"},
			{at: 5 * time.Second, op: "due", want: []string{"a:10"}},
			{at: 5 * time.Second, op: "check", rel: "a", size: 10, mt: 100, emit: true},
			{at: 6 * time.Second, op: "check", rel: "a", size: 10, mt: 100},
			{at: 20 * time.Second, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 30 * time.Second, op: "due"},
		}},
		{"change restarts the clock", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 3 * time.Second, op: "observe", rel: "a", size: 20, mt: 103},
			{at: 5 * time.Second, op: "due"},
			{at: 8 * time.Second, op: "due", want: []string{"a:20"}},
			{at: 8 * time.Second, op: "check", rel: "a", size: 20, mt: 103, emit: true},
		}},
		{"mtime change alone restarts the clock", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 3 * time.Second, op: "observe", rel: "a", size: 10, mt: 101},
			{at: 5 * time.Second, op: "due"},
			{at: 8 * time.Second, op: "due", want: []string{"a:10"}},
		}},
		{"re-check sees a change", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 5 * time.Second, op: "due", want: []string{"a:10"}},
			{at: 5 * time.Second, op: "check", rel: "a", size: 30, mt: 105},
			{at: 9 * time.Second, op: "due"},
			{at: 10 * time.Second, op: "due", want: []string{"a:30"}},
			{at: 10 * time.Second, op: "check", rel: "a", size: 30, mt: 105, emit: true},
		}},
		{"old mtime proves nothing", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: old},
			{at: time.Second, op: "due"},
			{at: time.Second, op: "check", rel: "a", size: 10, mt: old},
			{at: 5 * time.Second, op: "due", want: []string{"a:10"}},
		}},
		{"empty file waits for content", []step{
			{at: 0, op: "observe", rel: "a", size: 0, mt: 100},
			{at: 10 * time.Second, op: "due"},
			{at: 10 * time.Second, op: "check", rel: "a", size: 0, mt: 100},
			{at: 11 * time.Second, op: "observe", rel: "a", size: 7, mt: 111},
			{at: 15 * time.Second, op: "due"},
			{at: 16 * time.Second, op: "due", want: []string{"a:7"}},
		}},
		{"symlink settles like a file", []step{
			{at: 0, op: "observe", rel: "l", size: 12, mt: 100, link: true},
			{at: 5 * time.Second, op: "due", want: []string{"l:12:link"}},
			{at: 5 * time.Second, op: "check", rel: "l", size: 12, mt: 100, link: true, emit: true},
		}},
		{"file replaced by a link of the same size is new", []step{
			{at: 0, op: "observe", rel: "a", size: 12, mt: 100},
			{at: 5 * time.Second, op: "check", rel: "a", size: 12, mt: 100, emit: true},
			{at: 6 * time.Second, op: "observe", rel: "a", size: 12, mt: 100, link: true},
			{at: 11 * time.Second, op: "due", want: []string{"a:12:link"}},
		}},
		{"changed after emit is emitted again", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 5 * time.Second, op: "check", rel: "a", size: 10, mt: 100, emit: true},
			{at: 6 * time.Second, op: "observe", rel: "a", size: 11, mt: 106},
			{at: 11 * time.Second, op: "due", want: []string{"a:11"}},
			{at: 11 * time.Second, op: "check", rel: "a", size: 11, mt: 106, emit: true},
			{at: 12 * time.Second, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 17 * time.Second, op: "check", rel: "a", size: 10, mt: 100, emit: true},
		}},
		{"removed and back is new", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 5 * time.Second, op: "check", rel: "a", size: 10, mt: 100, emit: true},
			{at: 6 * time.Second, op: "remove", rel: "a"},
			{at: 7 * time.Second, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 11 * time.Second, op: "due"},
			{at: 12 * time.Second, op: "due", want: []string{"a:10"}},
			{at: 12 * time.Second, op: "check", rel: "a", size: 10, mt: 100, emit: true},
		}},
		{"stale queue item of a removed file is ignored", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 1 * time.Second, op: "remove", rel: "a"},
			{at: 3 * time.Second, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 5 * time.Second, op: "due"},
			{at: 8 * time.Second, op: "due", want: []string{"a:10"}},
			{at: 9 * time.Second, op: "due"},
		}},
		{"candidate not checked is queued again by the next observation", []step{
			{at: 0, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 5 * time.Second, op: "due", want: []string{"a:10"}},
			{at: 6 * time.Second, op: "due"},
			{at: 60 * time.Second, op: "observe", rel: "a", size: 10, mt: 100},
			{at: 60 * time.Second, op: "due", want: []string{"a:10"}},
		}},
		{"a restarted file is due after one that settles sooner", []step{
			{at: 0, op: "observe", rel: "b", size: 2, mt: 100},
			{at: 1 * time.Second, op: "observe", rel: "a", size: 1, mt: 100},
			{at: 2 * time.Second, op: "observe", rel: "b", size: 3, mt: 102},
			{at: 6500 * time.Millisecond, op: "due", want: []string{"a:1"}},
			{at: 7 * time.Second, op: "due", want: []string{"b:3"}},
		}},
		{"removeTree drops only what is below", []step{
			{at: 0, op: "observe", rel: "d/x", size: 1, mt: 100},
			{at: 0, op: "observe", rel: "d/y/z", size: 1, mt: 100},
			{at: 0, op: "observe", rel: "dd/x", size: 1, mt: 100},
			{at: 0, op: "observe", rel: "d", size: 1, mt: 100},
			{at: 1 * time.Second, op: "removeTree", rel: "d"},
			{at: 5 * time.Second, op: "due", want: []string{"dd/x:1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSettler(quiet, t0.Add(-time.Hour))
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				id := ident{size: st.size, sec: st.mt, symlink: st.link}
				switch st.op {
				case "observe":
					s.observe(st.rel, id, now)
				case "remove":
					s.remove(st.rel)
				case "removeTree":
					s.removeTree(st.rel)
				case "check":
					r, ok := s.check(st.rel, id, now)
					if ok != st.emit {
						t.Fatalf("step %d: check(%q) at %v = %v, want %v", i, st.rel, st.at, ok, st.emit)
					}
					want := Ready{Rel: st.rel, Size: st.size, ModTime: time.Unix(st.mt, 0), Symlink: st.link}
					if ok && (r.Rel != want.Rel || r.Size != want.Size || !r.ModTime.Equal(want.ModTime) || r.Symlink != want.Symlink) {
						t.Fatalf("step %d: check(%q) = %+v, want %+v", i, st.rel, r, want)
					}
				case "due":
					var got []string
					for _, r := range s.due(now) {
						got = append(got, readyString(r))
					}
					if !slices.Equal(got, st.want) {
						t.Fatalf("step %d: due(%v) = %q, want %q", i, st.at, got, st.want)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, st.op)
				}
			}
		})
	}
}

func readyString(r Ready) string {
	s := r.Rel + ":" + strconv.FormatInt(r.Size, 10)
	if r.Symlink {
		s += ":link"
	}
	return s
}

func TestSettlerNext(t *testing.T) {
	s := newSettler(5*time.Second, t0)
	if _, ok := s.next(); ok {
		t.Fatalf("next() on an empty settler reports a time")
	}
	s.observe("empty", ident{size: 0, sec: 1}, t0.Add(time.Second))
	if _, ok := s.next(); ok {
		t.Fatalf("next() reports a time for an empty file")
	}
	s.observe("b", ident{size: 1, sec: 1}, t0.Add(2*time.Second))
	s.observe("a", ident{size: 1, sec: 1}, t0.Add(3*time.Second))
	if at, ok := s.next(); !ok || !at.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("next() = %v, %v, want %v", at, ok, t0.Add(7*time.Second))
	}
}

func TestSettlerCurrent(t *testing.T) {
	s := newSettler(time.Second, t0)
	id := ident{size: 3, sec: 100, nsec: 5}
	s.observe("a", id, t0)
	r, ok := s.check("a", id, t0.Add(time.Second))
	if !ok {
		t.Fatalf("check after the quiet period did not emit")
	}
	if !s.current(r) {
		t.Fatalf("current(%+v) = false right after emitting", r)
	}
	s.observe("a", ident{size: 4, sec: 101}, t0.Add(2*time.Second))
	if s.current(r) {
		t.Fatalf("current(%+v) = true after the file changed", r)
	}
	s.remove("a")
	if s.current(r) {
		t.Fatalf("current(%+v) = true after remove", r)
	}
}

func TestSettlerSweep(t *testing.T) {
	s := newSettler(time.Second, t0)
	for _, rel := range []string{"seen", "gone", "locked/a", "locked/b/c", "lockedx/d"} {
		e, _ := s.observe(rel, ident{size: 1}, t0)
		e.gen = 1
	}
	s.files["seen"].gen = 2
	s.sweep(2, []string{"locked"})
	var got []string
	for rel := range s.files {
		got = append(got, rel)
	}
	slices.Sort(got)
	if want := []string{"locked/a", "locked/b/c", "seen"}; !slices.Equal(got, want) {
		t.Fatalf("after sweep: %q, want %q", got, want)
	}
}

func TestUnder(t *testing.T) {
	tests := []struct {
		rel  string
		dirs []string
		want bool
	}{
		{"a/b", []string{"a"}, true},
		{"a", []string{"a"}, true},
		{"ab/c", []string{"a"}, false},
		{"x", []string{""}, true},
		{"x", nil, false},
		{"a/b/c", []string{"z", "a/b"}, true},
	}
	for _, tt := range tests {
		if got := under(tt.rel, tt.dirs); got != tt.want {
			t.Errorf("under(%q, %q) = %v, want %v", tt.rel, tt.dirs, got, tt.want)
		}
	}
}
