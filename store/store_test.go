package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "ledger.db")
	s, err := openAt(t, path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, path
}

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func entry(path string, size int64, mtime time.Time, st State) Entry {
	return Entry{Path: path, Size: size, ModTime: mtime, Module: "Leads", RecordID: "1000000231009", State: st}
}

func mustPut(t testing.TB, s *Store, es ...Entry) {
	t.Helper()
	for _, e := range es {
		if err := s.Put(e); err != nil {
			t.Fatalf("Put(%q): %v", e.Path, err)
		}
	}
}

// diffEntry describes how got differs from want, or returns "". Times must be the same
// instant with the same UTC offset; the zone name is not part of the contract.
func diffEntry(got, want Entry) string {
	var diffs []string
	for _, f := range []struct {
		name      string
		got, want *time.Time
	}{
		{"ModTime", &got.ModTime, &want.ModTime},
		{"AttemptStart", &got.AttemptStart, &want.AttemptStart},
		{"Created", &got.Created, &want.Created},
		{"Updated", &got.Updated, &want.Updated},
	} {
		_, goff := f.got.Zone()
		_, woff := f.want.Zone()
		if !f.got.Equal(*f.want) || goff != woff || f.got.IsZero() != f.want.IsZero() {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", f.name, *f.got, *f.want))
		}
		*f.got, *f.want = time.Time{}, time.Time{}
	}
	if got != want {
		diffs = append(diffs, fmt.Sprintf("got %+v, want %+v", got, want))
	}
	return strings.Join(diffs, "; ")
}

func TestRoundTrip(t *testing.T) {
	s, _ := openTest(t)
	ist := time.FixedZone("IST", 5*3600+1800)
	pst := time.FixedZone("PST", -8*3600)
	tests := []struct {
		name string
		e    Entry
	}{
		{"every field", Entry{
			Path: "Leads/1000000231009 Acme/scans/p1.jpg", Size: 123456789,
			ModTime: time.Date(2024, 2, 29, 23, 59, 59, 999999999, ist),
			Module:  "Leads", RecordID: "1000000231009",
			State: Uploaded, Attempts: 3, LastError: "zoho: TOO_MANY_REQUESTS (HTTP 429): slow down",
			AttemptStart: time.Date(2025, 1, 1, 0, 0, 0, 1, pst),
			AttachmentID: "5000000012345", SHA256: strings.Repeat("ab", 32),
			Link:    "https://example.com/a?b=c&d=é",
			MovedTo: "_uploaded/Leads/1000000231009 Acme/scans/p1 (2).jpg",
			Created: t0, Updated: t0.Add(time.Nanosecond).In(ist),
			Placement: Moved, Verify: true, FileID: "fd01:1a2b3c4d5e6f",
		}},
		{"deleted", Entry{Path: "d", ModTime: t0, State: Uploaded, Placement: Deleted}},
		{"kept, to verify", Entry{Path: "k", ModTime: t0, State: Uploaded, Placement: Kept, Verify: true}},
		{"failed and moved", Entry{Path: "f", ModTime: t0, State: Failed, Placement: Moved, MovedTo: "_failed/f"}},
		{"windows file id", Entry{Path: "w", ModTime: t0, State: Pending, FileID: "c0ffee12:0001000000002a3f"}},
		{"minimal", Entry{Path: "x", ModTime: t0, State: Pending}},
		{"local zone and now", Entry{Path: "Deals/42/ünïcode ✓.pdf", Size: 1, ModTime: time.Now(), State: Failed, Created: time.Now()}},
		{"before 1970", Entry{Path: "old", Size: 7, ModTime: time.Date(1901, 12, 13, 20, 45, 52, 7, time.UTC), State: Uploading}},
		{"control bytes in strings", Entry{Path: "a\tb\nc", ModTime: t0, State: Pending, LastError: "\x01\"quoted\"\\"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustPut(t, s, tt.e)
			got, ok, err := s.Get(tt.e.Key())
			if err != nil || !ok {
				t.Fatalf("Get(%q) = _, %v, %v; want found", tt.e.Key(), ok, err)
			}
			if d := diffEntry(got, tt.e); d != "" {
				t.Errorf("round trip: %s", d)
			}
			if got.Key() != tt.e.Key() {
				t.Errorf("Key() after round trip = %q, want %q", got.Key(), tt.e.Key())
			}
		})
	}
	if _, ok, err := s.Get("nope"); ok || err != nil {
		t.Errorf("Get(missing) = _, %v, %v; want false, nil", ok, err)
	}
}

func TestKeyOrder(t *testing.T) {
	type id struct {
		path  string
		size  int64
		mtime int64
	}
	cmp := func(a, b id) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		if a.size != b.size {
			return compareInt(a.size, b.size)
		}
		return compareInt(a.mtime, b.mtime)
	}
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"a", "a b", "a/b", "a/b/c", "a0", "b", "Leads/1/x.pdf", "Leads/1/x.pdf.url", "é", "~"}
	nums := []int64{0, 1, 15, 16, 255, 256, 1 << 32, 1<<62 + 3}
	var ids []id
	for range 500 {
		mt := nums[r.IntN(len(nums))]
		if r.IntN(2) == 0 {
			mt = -mt
		}
		ids = append(ids, id{paths[r.IntN(len(paths))], nums[r.IntN(len(nums))], mt})
	}
	key := func(i id) string { return Entry{Path: i.path, Size: i.size, ModTime: time.Unix(0, i.mtime)}.Key() }
	for _, a := range ids {
		for _, b := range ids[:50] {
			if got, want := strings.Compare(key(a), key(b)), cmp(a, b); got != want {
				t.Fatalf("compare keys of %v and %v = %d, want %d", a, b, got, want)
			}
		}
	}
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestKeyIdentity(t *testing.T) {
	base := entry("Leads/1/a.pdf", 10, t0, Pending)
	tests := []struct {
		name string
		e    Entry
		same bool
	}{
		{"identical", base, true},
		{"same instant other zone", func() Entry { e := base; e.ModTime = t0.In(time.FixedZone("X", 3600)); return e }(), true},
		{"state and record do not matter", func() Entry { e := base; e.State, e.RecordID = Failed, "9"; return e }(), true},
		{"size differs", func() Entry { e := base; e.Size = 11; return e }(), false},
		{"mtime differs by 1ns", func() Entry { e := base; e.ModTime = t0.Add(time.Nanosecond); return e }(), false},
		{"path differs", func() Entry { e := base; e.Path = "Leads/1/a.pdf2"; return e }(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Key() == base.Key(); got != tt.same {
				t.Errorf("Key() == base.Key() is %v, want %v (%q vs %q)", got, tt.same, tt.e.Key(), base.Key())
			}
		})
	}

	s, _ := openTest(t)
	a := entry("a", 1, t0, Pending)
	b := entry("a", 2, t0, Uploaded)
	c := entry("a", 1, t0.Add(time.Nanosecond), Failed)
	mustPut(t, s, a, b, c, entry("a b", 1, t0, Pending), entry("a/b", 1, t0, Pending))
	got, err := s.ByPath("a")
	if err != nil {
		t.Fatal(err)
	}
	var gotKeys []string
	for _, e := range got {
		gotKeys = append(gotKeys, e.Key())
	}
	if want := []string{a.Key(), c.Key(), b.Key()}; !slices.Equal(gotKeys, want) {
		t.Errorf("ByPath(a) keys = %q, want %q", gotKeys, want)
	}
	if got, _ := s.ByPath("a/"); len(got) != 0 {
		t.Errorf("ByPath(a/) = %d entries, want 0", len(got))
	}
}

func TestPutRejects(t *testing.T) {
	s, _ := openTest(t)
	tests := []struct {
		name, want string
		e          Entry
	}{
		{"empty path", "empty path", entry("", 1, t0, Pending)},
		{"NUL in path", "NUL", entry("a\x00b", 1, t0, Pending)},
		{"negative size", "negative size", entry("a", -1, t0, Pending)},
		{"zero mtime", "outside the range", entry("a", 1, time.Time{}, Pending)},
		{"mtime after 2262", "outside the range", entry("a", 1, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Pending)},
		{"empty state", "unknown state", entry("a", 1, t0, "")},
		{"unknown state", "unknown state", entry("a", 1, t0, "done")},
		{"unknown placement", "unknown placement", func() Entry { e := entry("a", 1, t0, Uploaded); e.Placement = Kept + 1; return e }()},
		{"moved nowhere", "does not say where", func() Entry { e := entry("a", 1, t0, Uploaded); e.Placement = Moved; return e }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(tt.e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Put = %v, want error containing %q", err, tt.want)
			}
			err = s.PutAll([]Entry{entry("ok", 1, t0, Pending), tt.e})
			if err == nil {
				t.Errorf("PutAll with a bad entry = nil, want error")
			}
		})
	}
	if n := countAll(t, s); n != 0 {
		t.Errorf("after rejected puts the ledger has %d entries, want 0 (PutAll is all or nothing)", n)
	}
}

func countAll(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Each(func(Entry) bool { n++; return true }); err != nil {
		t.Fatalf("Each: %v", err)
	}
	return n
}

// model is the ledger's contract as plain maps.
type model struct {
	entries map[string]Entry
	attach  map[string]string // attachment id -> key
	ids     map[string]string // file id -> key
}

func newModel() *model {
	return &model{entries: map[string]Entry{}, attach: map[string]string{}, ids: map[string]string{}}
}

func (m *model) unindex(k string) {
	old, ok := m.entries[k]
	if !ok {
		return
	}
	if old.AttachmentID != "" && m.attach[old.AttachmentID] == k {
		delete(m.attach, old.AttachmentID)
	}
	if old.FileID != "" && m.ids[old.FileID] == k {
		delete(m.ids, old.FileID)
	}
}

func (m *model) put(e Entry) {
	k := e.Key()
	m.unindex(k)
	m.entries[k] = e
	if e.AttachmentID != "" {
		m.attach[e.AttachmentID] = k
	}
	if e.FileID != "" {
		m.ids[e.FileID] = k
	}
}

func (m *model) delete(k string) {
	m.unindex(k)
	delete(m.entries, k)
}

func (m *model) rekey(old string, e Entry) {
	if old != e.Key() {
		m.delete(old)
	}
	m.put(e)
}

var (
	modelAttachments = []string{"", "att1", "att2", "att3"}
	modelFileIDs     = []string{"", "1:10", "1:11", "2:10"}
)

// runOps interprets data as ledger operations, applies them to a fresh Store and to the
// model, and fails at the first disagreement.
func runOps(t *testing.T, data []byte) {
	s, _ := openTest(t)
	m := newModel()
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	paths := []string{"a", "a b", "a/b"}
	allStates := []State{Pending, Uploading, Uploaded, Failed}
	newEntry := func() Entry {
		b, c := next(), next()
		e := entry(paths[int(b)%3], int64(b/3%2), t0.Add(time.Duration(b/6%2)), allStates[c%4])
		e.AttachmentID = modelAttachments[c/4%4]
		e.Attempts = int(c / 16)
		e.FileID = modelFileIDs[b/12%4]
		return e
	}
	for step := 0; len(data) > 0; step++ {
		var desc string
		switch op := next() % 8; op {
		case 5:
			old, e := newEntry(), newEntry()
			desc = fmt.Sprintf("Rekey(%q, %q, %s, %q)", old.Key(), e.Key(), e.State, e.FileID)
			if err := s.Rekey(old.Key(), e); err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			m.rekey(old.Key(), e)
		case 0, 1, 4:
			e := newEntry()
			desc = fmt.Sprintf("Put(%q, %s, %q)", e.Key(), e.State, e.AttachmentID)
			if err := s.Put(e); err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			m.put(e)
		case 2, 6:
			e := newEntry()
			desc = fmt.Sprintf("Delete(%q)", e.Key())
			if err := s.Delete(e.Key()); err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			m.delete(e.Key())
		case 3, 7:
			es := []Entry{newEntry(), newEntry(), newEntry()}
			desc = fmt.Sprintf("PutAll(%q, %q, %q)", es[0].Key(), es[1].Key(), es[2].Key())
			if err := s.PutAll(es); err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			for _, e := range es {
				m.put(e)
			}
		}
		if err := compareModel(s, m); err != nil {
			t.Fatalf("step %d: after %s: %v", step, desc, err)
		}
	}
}

func compareModel(s *Store, m *model) error {
	counts, err := s.Counts()
	if err != nil {
		return err
	}
	for _, st := range []State{Pending, Uploading, Uploaded, Failed} {
		var want []Entry
		for _, e := range m.entries {
			if e.State == st {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, func(a, b Entry) int { return strings.Compare(a.Key(), b.Key()) })
		got, err := s.ByState(st, 0)
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("ByState(%s) = %d entries, want %d", st, len(got), len(want))
		}
		for i := range got {
			if d := diffEntry(got[i], want[i]); d != "" {
				return fmt.Errorf("ByState(%s)[%d]: %s", st, i, d)
			}
		}
		if counts[st] != len(want) {
			return fmt.Errorf("Counts()[%s] = %d, want %d", st, counts[st], len(want))
		}
	}
	for _, id := range modelAttachments[1:] {
		tag, err := s.attachmentTag(id)
		if err != nil {
			return err
		}
		if wkey, wok := m.attach[id]; (tag != nil) != wok || (wok && !bytes.Equal(tag, keyTag([]byte(wkey)))) {
			return fmt.Errorf("attachment index for %q = %x, want owner %q (%v)", id, tag, wkey, wok)
		}
		if taken, _ := s.AttachmentTaken(id); taken != (tag != nil) {
			return fmt.Errorf("AttachmentTaken(%q) = %v, index says %x", id, taken, tag)
		}
	}
	for _, id := range modelFileIDs {
		got, ok, err := s.ByFileID(id)
		if err != nil {
			return err
		}
		wkey, wok := m.ids[id]
		if ok != wok || (ok && got.Key() != wkey) {
			return fmt.Errorf("ByFileID(%q) = %q, %v; want %q, %v", id, got.Key(), ok, wkey, wok)
		}
		if ok && got.FileID != id {
			return fmt.Errorf("ByFileID(%q) returned an entry with FileID %q", id, got.FileID)
		}
	}
	var keys []string
	if err := s.Each(func(e Entry) bool { keys = append(keys, e.Key()); return true }); err != nil {
		return err
	}
	want := make([]string, 0, len(m.entries))
	for k := range m.entries {
		want = append(want, k)
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		return fmt.Errorf("Each keys = %q, want %q", keys, want)
	}
	return nil
}

func TestMatchesModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			data := make([]byte, 600)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			runOps(t, data)
		})
	}
}

func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0, 0, 9, 2, 0, 0})       // put, replace with an attachment, delete
	f.Add([]byte{0, 0, 4, 0, 1, 4, 0, 0, 0})       // two entries claim att1, then the first lets go
	f.Add([]byte{3, 0, 1, 0, 2, 2, 3, 1, 0, 2, 1}) // PutAll with a duplicate key
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 300 {
			data = data[:300]
		}
		runOps(t, data)
	})
}

func TestAttachmentIndex(t *testing.T) {
	s, _ := openTest(t)
	a := entry("a", 1, t0, Uploaded)
	b := entry("b", 1, t0, Uploaded)
	owner := func(id string) string {
		t.Helper()
		tag, err := s.attachmentTag(id)
		if err != nil {
			t.Fatalf("attachmentTag(%q): %v", id, err)
		}
		if tag == nil {
			return "<none>"
		}
		for _, k := range []string{a.Key(), b.Key()} {
			if bytes.Equal(tag, keyTag([]byte(k))) {
				return k
			}
		}
		return "<someone else>"
	}
	steps := []struct {
		name string
		do   func()
		want map[string]string
	}{
		{"set", func() { a.AttachmentID = "1"; mustPut(t, s, a) }, map[string]string{"1": a.Key(), "2": "<none>"}},
		{"unchanged re-put", func() { a.Attempts++; mustPut(t, s, a) }, map[string]string{"1": a.Key()}},
		{"change drops the old id", func() { a.AttachmentID = "2"; mustPut(t, s, a) }, map[string]string{"1": "<none>", "2": a.Key()}},
		{"another entry takes the id", func() { b.AttachmentID = "2"; mustPut(t, s, b) }, map[string]string{"2": b.Key()}},
		{"old owner letting go keeps the new owner", func() { a.AttachmentID = ""; mustPut(t, s, a) }, map[string]string{"2": b.Key()}},
		{"delete drops the id", func() { must(t, s.Delete(b.Key())) }, map[string]string{"2": "<none>"}},
		{"empty id", func() {}, map[string]string{"": "<none>"}},
	}
	for _, st := range steps {
		st.do()
		for id, want := range st.want {
			if got := owner(id); got != want {
				t.Errorf("%s: owner of %q = %q, want %q", st.name, id, got, want)
			}
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCountsAndByStateAcrossTransitions(t *testing.T) {
	s, _ := openTest(t)
	var es []Entry
	for i := range 10 {
		es = append(es, entry(fmt.Sprintf("f%02d", i), int64(i), t0, Pending))
	}
	must(t, s.PutAll(es))
	// Move the odd ones through uploading to uploaded, fail one, delete one.
	for i := 1; i < 10; i += 2 {
		es[i].State = Uploading
		mustPut(t, s, es[i])
		es[i].State = Uploaded
		mustPut(t, s, es[i])
	}
	es[0].State = Failed
	mustPut(t, s, es[0])
	must(t, s.Delete(es[2].Key()))
	must(t, s.Delete(es[2].Key())) // twice: a no-op, counts must not move

	got, err := s.Counts()
	must(t, err)
	want := map[State]int{Pending: 3, Uploading: 0, Uploaded: 5, Failed: 1}
	if !maps(got, want) {
		t.Errorf("Counts() = %v, want %v", got, want)
	}
	pend, err := s.ByState(Pending, 2)
	must(t, err)
	if len(pend) != 2 || pend[0].Path != "f04" || pend[1].Path != "f06" {
		t.Errorf("ByState(pending, 2) = %v, want f04, f06", pend)
	}
	if _, err := s.ByState("bogus", 0); err == nil {
		t.Errorf("ByState(bogus) = nil error, want error")
	}
}

func maps(a, b map[State]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func TestConcurrentPut(t *testing.T) {
	s, _ := openTest(t)
	const workers, perWorker = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Each worker walks its own files through every state, and all of them
				// also fight over one shared entry.
				e := entry(fmt.Sprintf("w%02d/f%03d", w, i), int64(i), t0, Pending)
				for _, st := range []State{Pending, Uploading, Uploaded} {
					e.State = st
					e.AttachmentID = ""
					if st == Uploaded {
						e.AttachmentID = fmt.Sprintf("att-%d-%d", w, i)
					}
					if err := s.Put(e); err != nil {
						errs <- err
						return
					}
				}
				shared := entry("shared", 1, t0, []State{Pending, Failed}[i%2])
				if err := s.Put(shared); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put: %v", err)
	}
	got, err := s.Counts()
	must(t, err)
	if got[Uploaded] != workers*perWorker || got[Pending]+got[Failed] != 1 || got[Uploading] != 0 {
		t.Errorf("Counts() = %v, want %d uploaded and the shared entry once", got, workers*perWorker)
	}
	for _, st := range []State{Pending, Uploading, Uploaded, Failed} {
		es, err := s.ByState(st, 0)
		must(t, err)
		if len(es) != got[st] {
			t.Errorf("len(ByState(%s)) = %d, Counts says %d", st, len(es), got[st])
		}
	}
	tag, err := s.attachmentTag("att-3-7")
	if want := entry("w03/f007", 7, t0, Pending).Key(); err != nil || !bytes.Equal(tag, keyTag([]byte(want))) {
		t.Errorf("attachment index for att-3-7 = %x, %v; want the tag of %q", tag, err, want)
	}
}

func TestEachMayWrite(t *testing.T) {
	s, _ := openTest(t)
	const n = 3*eachPage + 7
	var es []Entry
	for i := range n {
		es = append(es, entry(fmt.Sprintf("f%05d", i), 1, t0, Pending))
	}
	must(t, s.PutAll(es))
	seen := 0
	// Each Put grows the file (a big LastError), which needs a remap that an open read
	// transaction would block forever.
	err := s.Each(func(e Entry) bool {
		seen++
		e.State, e.LastError = Failed, strings.Repeat("x", 4096)
		if err := s.Put(e); err != nil {
			t.Errorf("Put inside Each: %v", err)
			return false
		}
		return true
	})
	must(t, err)
	if seen != n {
		t.Errorf("Each visited %d entries, want %d", seen, n)
	}
	if c, _ := s.Counts(); c[Failed] != n {
		t.Errorf("Counts()[failed] = %d, want %d", c[Failed], n)
	}
	seen = 0
	must(t, s.Each(func(Entry) bool { seen++; return seen < 5 }))
	if seen != 5 {
		t.Errorf("Each after fn returned false: visited %d, want 5", seen)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "ledger.db")
	s, err := openAt(t, path, Options{})
	must(t, err)
	e := entry("Leads/1/a.pdf", 5, t0, Uploaded)
	e.AttachmentID = "99"
	mustPut(t, s, e, entry("b", 1, t0, Pending))
	closeStore(t, s)
	if err := s.Put(e); err == nil {
		t.Errorf("Put after Close = nil, want error")
	}

	// Read-only first: the read-write run adds an entry.
	for _, ro := range []bool{true, false} {
		t.Run(fmt.Sprintf("readonly=%v", ro), func(t *testing.T) {
			s, err := openAt(t, path, Options{ReadOnly: ro})
			must(t, err)
			got, ok, err := s.Get(e.Key())
			if err != nil || !ok {
				t.Fatalf("Get after reopen = _, %v, %v", ok, err)
			}
			if d := diffEntry(got, e); d != "" {
				t.Errorf("after reopen: %s", d)
			}
			c, err := s.Counts()
			must(t, err)
			if want := (map[State]int{Pending: 1, Uploading: 0, Uploaded: 1, Failed: 0}); !maps(c, want) {
				t.Errorf("Counts() = %v, want %v", c, want)
			}
			if tag, _ := s.attachmentTag("99"); !bytes.Equal(tag, keyTag([]byte(e.Key()))) {
				t.Errorf("attachment index for 99 = %x; want the tag of %q", tag, e.Key())
			}
			err = s.Put(entry("c", 1, t0, Pending))
			if ro && (err == nil || !strings.Contains(err.Error(), "read-only")) {
				t.Errorf("Put on a read-only ledger = %v, want a read-only error", err)
			}
			if !ro && err != nil {
				t.Errorf("Put = %v", err)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	_, path := openTest(t)
	for _, c := range []struct {
		path string
		want fs.FileMode
	}{{filepath.Dir(path), 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		must(t, err)
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("mode of %s = %v, want %v", c.path, fi.Mode().Perm(), c.want)
		}
	}
}

func TestLocked(t *testing.T) {
	s, path := openTest(t)
	const timeout = 100 * time.Millisecond
	wantMsg := "ledger " + path + " is in use by another crmdrop process (is the daemon running?)"
	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprintf("readonly=%v", ro), func(t *testing.T) {
			start := time.Now()
			_, err := openAt(t, path, Options{Timeout: timeout, ReadOnly: ro})
			if err == nil {
				t.Fatalf("Open while the daemon holds the ledger = nil error, want ErrLocked")
			}
			if !errors.Is(err, ErrLocked) || err.Error() != wantMsg {
				t.Errorf("Open error = %q, want %q (matching ErrLocked)", err, wantMsg)
			}
			if el := time.Since(start); el < timeout/4 || el > 10*timeout {
				t.Errorf("Open gave up after %v, want about %v", el, timeout)
			}
		})
	}
	closeStore(t, s)
	// With the writer gone, readers share the file.
	_, err := openAt(t, path, Options{ReadOnly: true, Timeout: timeout})
	must(t, err)
	_, err = openAt(t, path, Options{ReadOnly: true, Timeout: timeout})
	must(t, err)
	if _, err := openAt(t, path, Options{Timeout: timeout}); !errors.Is(err, ErrLocked) {
		t.Errorf("writer Open while readers hold the ledger = %v, want ErrLocked", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Run("newer schema", func(t *testing.T) {
		s, path := openTest(t)
		must(t, s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), int64Bytes(schemaVersion+1))
		}))
		closeStore(t, s)
		for _, ro := range []bool{false, true} {
			_, err := openAt(t, path, Options{ReadOnly: ro})
			if err == nil || !strings.Contains(err.Error(), "newer crmdrop") {
				t.Errorf("Open(readonly=%v) of a newer ledger = %v, want a 'newer crmdrop' error", ro, err)
			}
		}
	})
	t.Run("missing, read-only", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope", "ledger.db")
		_, err := openAt(t, path, Options{ReadOnly: true})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist yet") {
			t.Errorf("Open(missing, ReadOnly) = %v, want a 'does not exist yet' error matching fs.ErrNotExist", err)
		}
		if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("read-only Open created %s", filepath.Dir(path))
		}
	})
	t.Run("foreign bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		must(t, err)
		must(t, db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err }))
		must(t, db.Close())
		for _, ro := range []bool{true, false} {
			_, err := openAt(t, path, Options{ReadOnly: ro})
			if err == nil || !strings.Contains(err.Error(), "not a crmdrop ledger") {
				t.Errorf("Open(readonly=%v) of a foreign bbolt file = %v, want 'not a crmdrop ledger'", ro, err)
			}
		}
	})
	t.Run("not bbolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "junk.db")
		must(t, os.WriteFile(path, []byte(strings.Repeat("junk", 2048)), 0o600))
		if _, err := openAt(t, path, Options{}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(junk) = %v, want an error naming the file", err)
		}
	})
}

// waitFor waits until cond holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// blockWriter starts a write that holds the commit until the returned func is called,
// so that the writes made meanwhile queue behind it.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(func(*bolt.Tx) error {
			select {
			case <-started:
			default:
				close(started)
			}
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking write: %v", err)
		}
	}
}

func queued(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func TestGroupCommit(t *testing.T) {
	t.Run("writes that queue share one commit", func(t *testing.T) {
		s, _ := openTest(t)
		release := blockWriter(t, s)
		before := commits(t, s)
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.Put(entry(fmt.Sprintf("f%02d", i), 1, t0, Pending)) })
		}
		waitFor(t, "all writes to queue", func() bool { return queued(s) == n })
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		}
		// The blocked write's commit, then one for all n.
		if got := commits(t, s) - before; got != 2 {
			t.Errorf("%d writes behind a running commit took %d commits, want 2", n, got)
		}
		if c, _ := s.Counts(); c[Pending] != n {
			t.Errorf("Counts()[pending] = %d, want %d", c[Pending], n)
		}
	})
	t.Run("a failing write does not fail the others", func(t *testing.T) {
		s, _ := openTest(t)
		release := blockWriter(t, s)
		var wg sync.WaitGroup
		var putErr, badErr, panicErr error
		wg.Go(func() { putErr = s.Put(entry("good", 1, t0, Pending)) })
		wg.Go(func() { badErr = s.write(func(*bolt.Tx) error { return errors.New("bad write") }) })
		wg.Go(func() { panicErr = s.write(func(*bolt.Tx) error { panic("boom") }) })
		waitFor(t, "three writes to queue", func() bool { return queued(s) == 3 })
		release()
		wg.Wait()
		if putErr != nil {
			t.Errorf("Put sharing a commit with a failing write = %v, want nil", putErr)
		}
		if badErr == nil || badErr.Error() != "bad write" {
			t.Errorf("failing write = %v, want its own error", badErr)
		}
		if panicErr == nil || !strings.Contains(panicErr.Error(), "boom") {
			t.Errorf("panicking write = %v, want an error naming the panic", panicErr)
		}
		if _, ok, _ := s.Get(entry("good", 1, t0, Pending).Key()); !ok {
			t.Errorf("the good write is missing")
		}
		if err := s.Put(entry("after", 1, t0, Pending)); err != nil {
			t.Errorf("Put after a failed commit = %v", err)
		}
	})
}
