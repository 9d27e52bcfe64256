package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"crmdrop/internal/fakeclock"
)

func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func TestID(t *testing.T) {
	dir := t.TempDir()
	a, err := openAt(t, filepath.Join(dir, "a.db"), Options{})
	must(t, err)
	b, err := openAt(t, filepath.Join(dir, "b.db"), Options{})
	must(t, err)
	if !validID(a.ID()) || !validID(b.ID()) || a.ID() == b.ID() {
		t.Fatalf("IDs of two new ledgers = %q, %q; want two different 16-hex-digit ids", a.ID(), b.ID())
	}
	id := a.ID()
	closeStore(t, a)
	for _, ro := range []bool{true, false} {
		s, err := openAt(t, filepath.Join(dir, "a.db"), Options{ReadOnly: ro})
		must(t, err)
		if s.ID() != id {
			t.Errorf("ID after reopening (read-only %v) = %q, want %q", ro, s.ID(), id)
		}
		closeStore(t, s)
	}
}

func TestRecoveryState(t *testing.T) {
	s, path := openTest(t)
	if r, ok, err := s.Recovery(); ok || err != nil {
		t.Fatalf("Recovery() of a new ledger = %+v, %v, %v; want none", r, ok, err)
	}
	want := Recovery{
		Reason:     "The ledger file could not be read: the file is empty.",
		Since:      t0.In(time.FixedZone("", 3600)),
		MovedAside: path + ".corrupt-20250314T150926Z",
	}
	if err := s.SetRecovery(Recovery{Since: t0}); err == nil {
		t.Errorf("SetRecovery without a reason = nil, want error")
	}
	must(t, s.SetRecovery(want))
	closeStore(t, s)
	for _, ro := range []bool{true, false} {
		s, err := openAt(t, path, Options{ReadOnly: ro})
		must(t, err)
		got, ok, err := s.Recovery()
		_, goff := got.Since.Zone()
		if err != nil || !ok || got.Reason != want.Reason || got.MovedAside != want.MovedAside || !got.Since.Equal(want.Since) || goff != 3600 {
			t.Errorf("Recovery() after reopen (read-only %v) = %+v, %v, %v; want %+v", ro, got, ok, err, want)
		}
		if ro {
			if err := s.ClearRecovery(); err == nil {
				t.Errorf("ClearRecovery on a read-only ledger = nil, want error")
			}
			closeStore(t, s)
			continue
		}
		must(t, s.ClearRecovery())
		must(t, s.ClearRecovery()) // twice: not an error
		if _, ok, err := s.Recovery(); ok || err != nil {
			t.Errorf("Recovery() after ClearRecovery = _, %v, %v; want none", ok, err)
		}
	}
}

// ledgerFile returns the bytes of a closed ledger holding n entries, enough for n above
// a few hundred to give the entries bucket branch pages.
func ledgerFile(t testing.TB, n int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	s, err := Open(path, Options{NoSync: true})
	must(t, err)
	var es []Entry
	for i := range n {
		e := entry(fmt.Sprintf("Leads/1000000231009 Acme/scans/page-%05d.pdf", i), int64(i), t0, []State{Pending, Uploaded, Failed}[i%3])
		if e.State == Uploaded {
			e.AttachmentID, e.Placement, e.MovedTo = fmt.Sprint(5000000000000+i), Moved, "_uploaded/"+e.Path
		}
		e.FileID = fmt.Sprintf("fd01:%x", i)
		es = append(es, e)
	}
	must(t, s.PutAll(es))
	if n > 2 {
		must(t, s.Delete(es[1].Key())) // so that the free list names a page or two
	}
	must(t, s.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	return data
}

// pagesOf lists, by type, the pages of data that are in use, as checkPages sees them.
func pagesOf(t testing.TB, data []byte) (ps uint64, byType map[uint16][]uint64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pages.db")
	must(t, os.WriteFile(path, data, 0o600))
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	c := &pageChecker{f: f, size: int64(len(data))}
	if err := c.run(); err != nil {
		t.Fatalf("checkPages of a sound ledger: %v", err)
	}
	byType = map[uint16][]uint64{}
	for id := uint64(2); id < c.hwm; id++ {
		if c.used.has(id) && !c.free.has(id) {
			flags := binary.NativeEndian.Uint16(data[id*c.ps+8:])
			byType[flags] = append(byType[flags], id)
		}
	}
	return c.ps, byType
}

func lastPage(pages map[uint16][]uint64) uint64 {
	var last uint64
	for _, ids := range pages {
		last = max(last, slices.Max(ids))
	}
	return last
}

// rawEdit changes a sound ledger through bbolt itself, behind the store's back.
func rawEdit(t testing.TB, data []byte, fn func(tx *bolt.Tx) error) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.db")
	must(t, os.WriteFile(path, data, 0o600))
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(fn))
	must(t, db.Close())
	out, err := os.ReadFile(path)
	must(t, err)
	return out
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lostLedgers are files at the ledger's path that OpenOrRecover must move aside.
// readable marks those a read-only Open still opens (the damage is in the contents,
// which only OpenOrRecover's full check reads).
func lostLedgers(t testing.TB) []struct {
	name     string
	data     []byte
	readable bool
} {
	small, big := ledgerFile(t, 20), ledgerFile(t, 1500)
	ps, pages := pagesOf(t, big)
	type lost = struct {
		name     string
		data     []byte
		readable bool
	}
	edit := func(src []byte, fn func(b []byte)) []byte {
		b := bytes.Clone(src)
		fn(b)
		return b
	}
	out := []lost{
		{"random garbage", randomBytes(1, 64<<10), false},
		{"zero-length", []byte{}, false},
		{"one byte", []byte{0}, false},
		{"a page of zeros", make([]byte, 4096), false},
		{"truncated to its first page", small[:ps], false},
		{"truncated to one and a half pages", small[:ps+ps/2], false},
		{"truncated to half", big[:len(big)/2], false},
		{"truncated inside its last page in use", big[:lastPage(pages)*ps+ps/2], false},
		{"header pages overwritten", edit(big, func(b []byte) { copy(b, randomBytes(2, 2*int(ps))) }), false},
		{"branch page that names itself", edit(big, func(b []byte) {
			id := pages[branchPageFlag][0]
			binary.NativeEndian.PutUint64(b[id*ps+pageHeaderSize+8:], id)
		}), false},
		{"branch page that names a page far outside the file", edit(big, func(b []byte) {
			id := pages[branchPageFlag][0]
			binary.NativeEndian.PutUint64(b[id*ps+pageHeaderSize+8:], 1<<28)
		}), false},
		{"leaf element pointing outside its page", edit(big, func(b []byte) {
			id := pages[leafPageFlag][len(pages[leafPageFlag])/2]
			binary.NativeEndian.PutUint32(b[id*ps+pageHeaderSize+12:], 1<<30)
		}), false},
		{"free list naming a page in use", edit(big, func(b []byte) {
			id := pages[freelistPageFlag][0]
			if binary.NativeEndian.Uint16(b[id*ps+10:]) == 0 {
				t.Fatal("the test ledger has no free pages")
			}
			binary.NativeEndian.PutUint64(b[id*ps+pageHeaderSize:], pages[leafPageFlag][0])
		}), false},
		{"a bbolt file that is not a crmdrop ledger", rawEdit(t, small, func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaSchema)); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("theirs"))
			return err
		}), false},
		{"an entry that does not decode", rawEdit(t, small, func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bucketEntries)).Cursor()
			k, _ := c.First()
			return tx.Bucket([]byte(bucketEntries)).Put(k, []byte{binaryV3, 0xff})
		}), true},
		{"an entry under another file's key", rawEdit(t, small, func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bucketEntries)).Cursor()
			k, _ := c.First()
			_, v := c.Next()
			return tx.Bucket([]byte(bucketEntries)).Put(k, bytes.Clone(v))
		}), true},
		{"a state index row missing", rawEdit(t, small, func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bucketStates)).Cursor()
			k, _ := c.First()
			return tx.Bucket([]byte(bucketStates)).Delete(k)
		}), true},
		{"a count that is wrong", rawEdit(t, small, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(countPrefix+string(Pending)), int64Bytes(99))
		}), true},
		{"an id index row naming no entry", rawEdit(t, small, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketIDs)).Put([]byte("9:9"), []byte("nobody"))
		}), true},
		{"the states bucket gone", rawEdit(t, small, func(tx *bolt.Tx) error {
			return tx.DeleteBucket([]byte(bucketStates))
		}), false},
	}
	// Random bytes over the start of a page in use, somewhere in the middle.
	used := append(append([]uint64{}, pages[branchPageFlag]...), pages[leafPageFlag]...)
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 3))
		id := used[r.IntN(len(used))]
		at, n := id*ps+uint64(r.IntN(8)), 32+r.IntN(int(ps))
		out = append(out, lost{fmt.Sprintf("random bytes over page %d (seed %d)", id, seed),
			edit(big, func(b []byte) { copy(b[at:], randomBytes(100+seed, n)) }), false})
	}
	return out
}

func TestOpenOrRecover(t *testing.T) {
	clk := fakeclock.New(t0)
	for _, tt := range lostLedgers(t) {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state", "ledger.db")
			must(t, os.MkdirAll(filepath.Dir(path), 0o700))
			must(t, os.WriteFile(path, tt.data, 0o600))

			// What `crmdrop status` does: an error, never a crash.
			ro, err := Open(path, Options{ReadOnly: true})
			switch {
			case tt.readable && err != nil:
				t.Errorf("read-only Open = %v, want it to open (the damage is in the contents)", err)
			case !tt.readable && !errors.Is(err, ErrCorrupt):
				t.Errorf("read-only Open = %v, want an error matching ErrCorrupt", err)
			}
			if err == nil {
				_ = ro.Each(func(Entry) bool { return true })
				_ = ro.Close()
			}

			s, rec, err := OpenOrRecover(path, Options{Clock: clk, NoSync: true})
			if err != nil {
				t.Fatalf("OpenOrRecover = %v", err)
			}
			track(t, s)
			if rec == nil {
				t.Fatalf("OpenOrRecover returned no Recovery")
			}
			t.Logf("reason: %s", rec.Reason)
			aside := path + ".corrupt-20250314T150926Z"
			if rec.MovedAside != aside || !rec.Since.Equal(t0) ||
				!strings.HasPrefix(rec.Reason, "The ledger file could not be read: ") || !strings.HasSuffix(rec.Reason, ".") || strings.Contains(rec.Reason, "\n") {
				t.Errorf("Recovery = %+v; want MovedAside %q, Since %v and a one-sentence reason", rec, aside, t0)
			}
			if kept, err := os.ReadFile(aside); err != nil || !bytes.Equal(kept, tt.data) {
				t.Errorf("the lost ledger was not kept as %s (%v)", aside, err)
			}
			if _, err := os.Stat(path + ".new"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s.new left behind (%v)", path, err)
			}
			if got, ok, err := s.Recovery(); err != nil || !ok || got != *rec {
				t.Errorf("Recovery() = %+v, %v, %v; want %+v", got, ok, err, *rec)
			}
			if !validID(s.ID()) {
				t.Errorf("ID() of the fresh ledger = %q", s.ID())
			}
			e := entry("Leads/1/a.pdf", 1, t0, Pending)
			e.Verify, e.FileID = true, "1:1"
			mustPut(t, s, e)
			if got, ok, err := s.ByFileID("1:1"); err != nil || !ok || diffEntry(got, e) != "" {
				t.Errorf("the fresh ledger: ByFileID = %+v, %v, %v", got, ok, err)
			}
			if c, err := s.Counts(); err != nil || c[Pending] != 1 {
				t.Errorf("the fresh ledger: Counts() = %v, %v", c, err)
			}
			id := s.ID()
			closeStore(t, s)

			// The next start finds the fresh ledger, still in recovery: nothing new
			// happened, so no Recovery is returned.
			s, rec, err = OpenOrRecover(path, Options{Clock: clk, NoSync: true})
			if err != nil || rec != nil {
				t.Fatalf("second OpenOrRecover = %v, %+v; want the fresh ledger and no new recovery", err, rec)
			}
			track(t, s)
			if _, ok, _ := s.Recovery(); !ok || s.ID() != id {
				t.Errorf("after a restart: in recovery %v, ID %q; want true, %q", ok, s.ID(), id)
			}
		})
	}
}

func TestOpenOrRecoverLeavesAlone(t *testing.T) {
	asides := func(t *testing.T, path string) []string {
		m, _ := filepath.Glob(path + ".*")
		return m
	}
	t.Run("a sound ledger", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		must(t, os.WriteFile(path, ledgerFile(t, 50), 0o600))
		s, rec, err := OpenOrRecover(path, Options{})
		if err != nil || rec != nil {
			t.Fatalf("OpenOrRecover(sound) = %v, %+v", err, rec)
		}
		track(t, s)
		if c, _ := s.Counts(); c[Pending]+c[Uploaded]+c[Failed] != 49 {
			t.Errorf("Counts() = %v, want 49 entries", c)
		}
		if m := asides(t, path); len(m) != 0 {
			t.Errorf("files beside the ledger: %q", m)
		}
	})
	t.Run("no ledger yet", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state", "ledger.db")
		s, rec, err := OpenOrRecover(path, Options{})
		if err != nil || rec != nil {
			t.Fatalf("OpenOrRecover(missing) = %v, %+v", err, rec)
		}
		track(t, s)
		if _, ok, _ := s.Recovery(); ok {
			t.Errorf("a new ledger is in recovery")
		}
	})
	t.Run("held by another process", func(t *testing.T) {
		s, path := openTest(t)
		mustPut(t, s, entry("a", 1, t0, Pending))
		before, err := os.ReadFile(path)
		must(t, err)
		_, _, err = OpenOrRecover(path, Options{Timeout: 50 * time.Millisecond})
		if !errors.Is(err, ErrLocked) {
			t.Errorf("OpenOrRecover of a held ledger = %v, want ErrLocked", err)
		}
		if m := asides(t, path); len(m) != 0 {
			t.Errorf("a held ledger was moved aside: %q", m)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
			t.Errorf("a held ledger was changed")
		}
	})
	t.Run("newer schema", func(t *testing.T) {
		s, path := openTest(t)
		must(t, s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), int64Bytes(schemaVersion+1))
		}))
		closeStore(t, s)
		if _, _, err := OpenOrRecover(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer crmdrop") || errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenOrRecover of a newer ledger = %v, want the 'newer crmdrop' refusal", err)
		}
		if m := asides(t, path); len(m) != 0 {
			t.Errorf("a newer ledger was moved aside: %q", m)
		}
	})
	t.Run("not a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		must(t, os.Mkdir(path, 0o700))
		if _, _, err := OpenOrRecover(path, Options{}); err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenOrRecover(a folder) = %v, want an I/O error, not ErrCorrupt", err)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Errorf("the folder was moved (%v)", err)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		if _, _, err := OpenOrRecover(filepath.Join(t.TempDir(), "l.db"), Options{ReadOnly: true}); err == nil {
			t.Errorf("OpenOrRecover(ReadOnly) = nil error")
		}
	})
}

func TestOpenOrRecoverNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	clk := fakeclock.New(t0)
	first := path + ".corrupt-20250314T150926Z"
	must(t, os.WriteFile(first, []byte("an earlier loss"), 0o600))
	for i, want := range []string{first + "-2", first + "-3"} {
		garbage := randomBytes(uint64(i), 10000)
		if i > 0 {
			// The fresh ledger is lost in turn, within the same second.
			_, err := os.Stat(path)
			must(t, err)
		}
		must(t, os.WriteFile(path, garbage, 0o600))
		s, rec, err := OpenOrRecover(path, Options{Clock: clk})
		if err != nil || rec == nil || rec.MovedAside != want {
			t.Fatalf("OpenOrRecover #%d = %v, %+v; want it moved aside to %s", i+1, err, rec, want)
		}
		closeStore(t, s)
		if got, _ := os.ReadFile(want); !bytes.Equal(got, garbage) {
			t.Errorf("%s does not hold the lost ledger", want)
		}
	}
	if got, _ := os.ReadFile(first); string(got) != "an earlier loss" {
		t.Errorf("%s was overwritten", first)
	}
}

// TestReadsSurviveDamageAfterOpen damages the file under an open store, where no check
// at open can help: every read and write returns an error instead of crashing.
func TestReadsSurviveDamageAfterOpen(t *testing.T) {
	damages := []struct {
		name string
		do   func(b []byte, ps uint64, pages map[uint16][]uint64)
	}{
		{"every page misnamed (bbolt panics)", func(b []byte, ps uint64, pages map[uint16][]uint64) {
			for _, ids := range pages {
				for _, id := range ids {
					binary.NativeEndian.PutUint64(b[id*ps:], id+1000)
				}
			}
		}},
		{"tree pages pointing far outside the map (a memory fault)", func(b []byte, ps uint64, pages map[uint16][]uint64) {
			for _, id := range append(append([]uint64{}, pages[leafPageFlag]...), pages[branchPageFlag]...) {
				p := b[id*ps:]
				binary.NativeEndian.PutUint16(p[8:], branchPageFlag)
				binary.NativeEndian.PutUint16(p[10:], 1)
				binary.NativeEndian.PutUint32(p[pageHeaderSize:], 16)
				binary.NativeEndian.PutUint32(p[pageHeaderSize+4:], 1)
				binary.NativeEndian.PutUint64(p[pageHeaderSize+8:], 1<<28)
			}
		}},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			data := ledgerFile(t, 1500)
			must(t, os.WriteFile(path, data, 0o600))
			s, err := Open(path, Options{NoSync: true})
			must(t, err)
			defer s.Close()
			ps, pages := pagesOf(t, data)
			d.do(data, ps, pages)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt(data, 0) // through the page cache, so the open map sees it
			must(t, err)
			must(t, f.Close())

			e := entry("Leads/1000000231009 Acme/scans/page-00003.pdf", 3, t0, Pending)
			reads := map[string]func() error{
				"Get":             func() error { _, _, err := s.Get(e.Key()); return err },
				"ByState":         func() error { _, err := s.ByState(Pending, 0); return err },
				"ByPath":          func() error { _, err := s.ByPath(e.Path); return err },
				"Each":            func() error { return s.Each(func(Entry) bool { return true }) },
				"Counts":          func() error { _, err := s.Counts(); return err },
				"ByFileID":        func() error { _, _, err := s.ByFileID("fd01:3"); return err },
				"AttachmentTaken": func() error { _, err := s.AttachmentTaken("5000000000001"); return err },
				"Recovery":        func() error { _, _, err := s.Recovery(); return err },
				"Put":             func() error { return s.Put(e) },
				"Rekey":           func() error { return s.Rekey(e.Key(), e) },
			}
			for name, read := range reads {
				if err := read(); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s on a damaged ledger = %v, want an error matching ErrCorrupt", name, err)
				}
			}
		})
	}
}

func FuzzOpenOrRecover(f *testing.F) {
	small := ledgerFile(f, 8)
	f.Add(small)
	f.Add([]byte{})
	f.Add(make([]byte, 4096))
	f.Add(randomBytes(1, 300))
	f.Add(small[:len(small)/2])
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprint(n), "ledger.db")
		must(t, os.MkdirAll(filepath.Dir(path), 0o700))
		must(t, os.WriteFile(path, data, 0o600))
		defer os.RemoveAll(filepath.Dir(path))
		if ro, err := Open(path, Options{ReadOnly: true}); err == nil {
			_ = ro.Each(func(Entry) bool { return true })
			_, _ = ro.Counts()
			_ = ro.Close()
		}
		s, rec, err := OpenOrRecover(path, Options{NoSync: true})
		if err != nil {
			if strings.Contains(err.Error(), "newer crmdrop") {
				return // a sound ledger whose schema number the fuzzer raised
			}
			t.Fatalf("OpenOrRecover = %v", err)
		}
		if rec != nil {
			if kept, err := os.ReadFile(rec.MovedAside); err != nil || !bytes.Equal(kept, data) {
				t.Errorf("the lost ledger was not kept as %s (%v)", rec.MovedAside, err)
			}
		}
		e := entry("Leads/1/fuzz.pdf", 1, t0, Pending)
		e.FileID = "f:1"
		if err := s.Put(e); err != nil {
			t.Errorf("Put on the opened ledger: %v", err)
		}
		if _, ok, err := s.ByFileID("f:1"); !ok || err != nil {
			t.Errorf("ByFileID on the opened ledger = %v, %v", ok, err)
		}
		if err := s.Each(func(Entry) bool { return true }); err != nil {
			t.Errorf("Each on the opened ledger: %v", err)
		}
		closeStore(t, s)
	})
}
