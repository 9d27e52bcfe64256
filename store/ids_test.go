package store

import (
	"testing"
	"time"
)

// TestFileIDIndex walks the ids index through every way a row is made, moved and
// dropped, checking after each step who ByFileID finds.
func TestFileIDIndex(t *testing.T) {
	s, _ := openTest(t)
	a := entry("Leads/1/a.pdf", 1, t0, Pending)
	b := entry("Leads/1/b.pdf", 2, t0, Pending)
	c := entry("Leads/1/c.pdf", 3, t0, Pending)
	owner := func(id string) string {
		t.Helper()
		e, ok, err := s.ByFileID(id)
		if err != nil {
			t.Fatalf("ByFileID(%q): %v", id, err)
		}
		if !ok {
			return "<none>"
		}
		if e.FileID != id {
			t.Errorf("ByFileID(%q) returned %q, whose FileID is %q", id, e.Path, e.FileID)
		}
		return e.Path
	}
	steps := []struct {
		name string
		do   func()
		want map[string]string
	}{
		{"put with an id", func() { a.FileID = "1:a"; mustPut(t, s, a) }, map[string]string{"1:a": a.Path, "1:b": "<none>"}},
		{"unchanged re-put", func() { a.State = Uploading; mustPut(t, s, a) }, map[string]string{"1:a": a.Path}},
		{"change drops the old id", func() { a.FileID = "1:b"; mustPut(t, s, a) }, map[string]string{"1:a": "<none>", "1:b": a.Path}},
		{"clearing drops it", func() { a.FileID = ""; mustPut(t, s, a) }, map[string]string{"1:b": "<none>"}},
		{"put again", func() { a.FileID = "1:a"; mustPut(t, s, a) }, map[string]string{"1:a": a.Path}},
		{"another entry takes the id", func() { b.FileID = "1:a"; mustPut(t, s, b) }, map[string]string{"1:a": b.Path}},
		{"old holder re-put takes it back (latest wins)", func() { a.Attempts++; mustPut(t, s, a) }, map[string]string{"1:a": a.Path}},
		{"the one not pointed at letting go changes nothing", func() { b.FileID = ""; mustPut(t, s, b) }, map[string]string{"1:a": a.Path}},
		{"delete of another holder changes nothing", func() { b.FileID = "1:a"; mustPut(t, s, b); mustPut(t, s, a); must(t, s.Delete(b.Key())) }, map[string]string{"1:a": a.Path}},
		{"delete drops it", func() { must(t, s.Delete(a.Key())) }, map[string]string{"1:a": "<none>"}},
		{"PutAll: the later of two wins", func() {
			a.FileID, c.FileID = "1:c", "1:c"
			must(t, s.PutAll([]Entry{a, c}))
		}, map[string]string{"1:c": c.Path}},
		{"PutAll: one entry changes its id, another takes the old one", func() {
			c.FileID, b.FileID = "1:d", "1:c"
			must(t, s.PutAll([]Entry{c, b}))
		}, map[string]string{"1:c": b.Path, "1:d": c.Path}},
		{"rekey moves the id to the new key", func() {
			old := c.Key()
			c.Path = "Leads/1/renamed c.pdf"
			must(t, s.Rekey(old, c))
		}, map[string]string{"1:d": "Leads/1/renamed c.pdf"}},
		{"rekey with a new id drops the old one", func() {
			old := c.Key()
			c.Path, c.FileID = "Leads/2/c.pdf", "2:d"
			must(t, s.Rekey(old, c))
		}, map[string]string{"1:d": "<none>", "2:d": "Leads/2/c.pdf"}},
		{"empty id", func() {}, map[string]string{"": "<none>"}},
	}
	for _, st := range steps {
		st.do()
		for id, want := range st.want {
			if got := owner(id); got != want {
				t.Errorf("%s: ByFileID(%q) finds %q, want %q", st.name, id, got, want)
			}
		}
	}
}

func TestRekey(t *testing.T) {
	renamed := func(e Entry, path string) Entry { e.Path = path; return e }
	base := entry("Leads/1/a.pdf", 10, t0, Uploaded)
	base.AttachmentID, base.FileID, base.Placement = "5000000000001", "1:a", Unplaced
	other := entry("Leads/1/other.pdf", 11, t0, Pending)
	tests := []struct {
		name     string
		setup    []Entry
		oldKey   string
		e        Entry
		wantKeys []string
		counts   map[State]int
	}{
		{"rename", []Entry{base, other}, base.Key(), renamed(base, "Leads/1/b.pdf"),
			[]string{renamed(base, "Leads/1/b.pdf").Key(), other.Key()}, map[State]int{Uploaded: 1, Pending: 1}},
		{"old key missing: a plain put", []Entry{other}, base.Key(), renamed(base, "Leads/1/b.pdf"),
			[]string{renamed(base, "Leads/1/b.pdf").Key(), other.Key()}, map[State]int{Uploaded: 1, Pending: 1}},
		{"same key: a put", []Entry{base}, base.Key(), func() Entry { e := base; e.Attempts = 7; return e }(),
			[]string{base.Key()}, map[State]int{Uploaded: 1}},
		{"over an existing entry at the new key", []Entry{base, renamed(other, "Leads/1/b.pdf")}, base.Key(),
			func() Entry { e := renamed(base, "Leads/1/b.pdf"); e.Size = other.Size; return e }(),
			[]string{func() Entry { e := renamed(base, "Leads/1/b.pdf"); e.Size = other.Size; return e }().Key()}, map[State]int{Uploaded: 1}},
		{"state changes with the key", []Entry{func() Entry { e := base; e.State = Uploading; return e }()}, base.Key(), renamed(base, "x"),
			[]string{renamed(base, "x").Key()}, map[State]int{Uploaded: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			must(t, s.PutAll(tt.setup))
			must(t, s.Rekey(tt.oldKey, tt.e))
			var keys []string
			must(t, s.Each(func(e Entry) bool { keys = append(keys, e.Key()); return true }))
			if len(keys) != len(tt.wantKeys) {
				t.Fatalf("keys after Rekey = %q, want %q", keys, tt.wantKeys)
			}
			for i := range keys {
				if keys[i] != tt.wantKeys[i] {
					t.Errorf("keys after Rekey = %q, want %q", keys, tt.wantKeys)
				}
			}
			got, ok, err := s.Get(tt.e.Key())
			if err != nil || !ok || diffEntry(got, tt.e) != "" {
				t.Errorf("Get(new key) = %+v, %v, %v; want %+v", got, ok, err, tt.e)
			}
			c, _ := s.Counts()
			for _, st := range []State{Pending, Uploading, Uploaded, Failed} {
				if c[st] != tt.counts[st] {
					t.Errorf("Counts()[%s] = %d, want %d", st, c[st], tt.counts[st])
				}
			}
			if taken, _ := s.AttachmentTaken(base.AttachmentID); !taken {
				t.Errorf("attachment %s not taken after Rekey", base.AttachmentID)
			}
			// checkConsistent (at cleanup) checks every index against the entries.
		})
	}
	t.Run("a bad entry changes nothing", func(t *testing.T) {
		s, _ := openTest(t)
		mustPut(t, s, base)
		if err := s.Rekey(base.Key(), renamed(base, "")); err == nil {
			t.Errorf("Rekey to an empty path = nil, want error")
		}
		if _, ok, _ := s.Get(base.Key()); !ok {
			t.Errorf("the old entry is gone after a refused Rekey")
		}
	})
	t.Run("readers never see the file missing", func(t *testing.T) {
		s, _ := openTest(t)
		e := base
		mustPut(t, s, e)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 200 {
				old := e.Key()
				e.Path = []string{"Leads/1/a.pdf", "Leads/1/b.pdf"}[i%2]
				e.ModTime = t0.Add(time.Duration(i))
				if err := s.Rekey(old, e); err != nil {
					t.Errorf("Rekey: %v", err)
					return
				}
			}
		}()
		for {
			select {
			case <-done:
				return
			default:
			}
			if c, err := s.Counts(); err != nil || c[Uploaded] != 1 {
				t.Fatalf("Counts() during Rekeys = %v, %v; want 1 uploaded", c, err)
			}
			if _, ok, err := s.ByFileID(base.FileID); err != nil || !ok {
				t.Fatalf("ByFileID during Rekeys = %v, %v; want found", ok, err)
			}
		}
	})
}
