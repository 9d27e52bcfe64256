package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeLegacyLedger makes the ledger an older crmdrop (schema 1 or 2) would have left
// at path: no ids bucket, no ledger id, values in that schema's encoding, schema 1's
// attachment index holding whole keys.
func writeLegacyLedger(t *testing.T, path string, schema int, es ...Entry) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		bk := map[string]*bolt.Bucket{}
		for _, name := range []string{bucketMeta, bucketEntries, bucketStates, bucketAttachments} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			bk[name] = b
		}
		if err := bk[bucketMeta].Put([]byte(metaSchema), int64Bytes(int64(schema))); err != nil {
			return err
		}
		counts := map[State]int64{}
		for _, e := range es {
			k := []byte(e.Key())
			val := encodeV2(t, e)
			if schema == 1 {
				val, _ = json.Marshal(legacyRecord(e))
			}
			if err := bk[bucketEntries].Put(k, val); err != nil {
				return err
			}
			if err := bk[bucketStates].Put(stateKey(e.State, k), []byte{}); err != nil {
				return err
			}
			counts[e.State]++
			if e.AttachmentID != "" {
				owner := keyTag(k)
				if schema == 1 {
					owner = k
				}
				if err := bk[bucketAttachments].Put([]byte(e.AttachmentID), owner); err != nil {
					return err
				}
			}
		}
		for st, n := range counts {
			if err := bk[bucketMeta].Put([]byte(countPrefix+string(st)), int64Bytes(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// encodeV2 is e in the binary encoding of schema 2: version 3 without its last three
// fields. Schema 2 had no Placement: MovedTo holds e's, "(deleted)" for Deleted.
func encodeV2(t testing.TB, e Entry) []byte {
	t.Helper()
	if e.Placement == Deleted {
		e.MovedTo = legacyDeleted
	}
	e.Placement, e.Verify, e.FileID = Unplaced, false, ""
	v, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if tail := v[len(v)-3:]; tail[0] != 0 || tail[1] != 0 || tail[2] != 0 {
		t.Fatalf("version 3 does not end in three zero bytes for zero new fields: %x", tail)
	}
	v = v[:len(v)-3]
	v[0] = binaryV2
	return v
}

func TestLegacyPlacement(t *testing.T) {
	tests := []struct {
		movedTo       string
		want          Placement
		wantMovedTo   string
		wantPlacement string
	}{
		{"", Unplaced, "", "unplaced"},
		{"(deleted)", Deleted, "", "deleted"},
		{"_uploaded/Leads/1/a (2).pdf", Moved, "_uploaded/Leads/1/a (2).pdf", "moved"},
		{"_failed/Leads/1/setup.exe", Moved, "_failed/Leads/1/setup.exe", "moved"},
	}
	for _, tt := range tests {
		for _, schema := range []int{1, 2} {
			t.Run(fmt.Sprintf("schema %d moved_to %q", schema, tt.movedTo), func(t *testing.T) {
				e := entry("Leads/1/a.pdf", 3, t0, Uploaded)
				e.MovedTo = tt.movedTo // as the old build stored it
				val := encodeV2(t, e)
				if schema == 1 {
					val, _ = json.Marshal(legacyRecord(e))
				}
				got, err := decode([]byte(e.Key()), val)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got.Placement != tt.want || got.MovedTo != tt.wantMovedTo {
					t.Errorf("decode(moved_to %q) = placement %v, MovedTo %q; want %v, %q", tt.movedTo, got.Placement, got.MovedTo, tt.want, tt.wantMovedTo)
				}
				if got.Placement.String() != tt.wantPlacement {
					t.Errorf("Placement.String() = %q, want %q", got.Placement.String(), tt.wantPlacement)
				}
			})
		}
	}
	// The sentinel means nothing in schema 3: a value is what it says.
	e := entry("x", 1, t0, Uploaded)
	e.MovedTo = legacyDeleted
	v, _ := encode(e)
	if got, _ := decode([]byte(e.Key()), v); got.Placement != Unplaced || got.MovedTo != legacyDeleted {
		t.Errorf("schema-3 value with MovedTo %q = %v, %q; want it as written", legacyDeleted, got.Placement, got.MovedTo)
	}
	if got := Placement(9).String(); got != "placement(9)" {
		t.Errorf("Placement(9).String() = %q", got)
	}
}

// TestReadsLegacyLedgers opens ledgers written by schema 1 (JSON values) and schema 2
// (binary values without placement): read-only they read as they are; opened for
// writing they are marked schema 3, so an older build refuses them rather than misread
// the values written from now on, and get an ids bucket and a ledger id.
func TestReadsLegacyLedgers(t *testing.T) {
	deleted := entry("Leads/1/a.pdf", 3, time.Unix(1700000000, 5).UTC(), Uploaded)
	deleted.AttachmentID, deleted.SHA256, deleted.Placement = "42", "abc", Deleted
	moved := entry("Leads/1/b.pdf", 4, t0, Failed)
	moved.Placement, moved.MovedTo = Moved, "_failed/Leads/1/b.pdf"
	owed := entry("Leads/1/c.pdf", 5, t0, Uploaded)
	owed.AttachmentID = "43"
	pending := entry("Leads/1/d.pdf", 6, t0, Pending)
	all := []Entry{deleted, moved, owed, pending}
	for _, schema := range []int{1, 2} {
		t.Run(fmt.Sprint("schema ", schema), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			writeLegacyLedger(t, path, schema, all...)
			check := func(s *Store) {
				t.Helper()
				for _, want := range all {
					got, ok, err := s.Get(want.Key())
					if err != nil || !ok {
						t.Fatalf("Get(%q) = _, %v, %v", want.Key(), ok, err)
					}
					if d := diffEntry(got, want); d != "" {
						t.Errorf("Get(%q): %s", want.Key(), d)
					}
				}
				if _, ok, err := s.ByFileID("1:2"); ok || err != nil {
					t.Errorf("ByFileID on a legacy ledger = _, %v, %v; want false, nil", ok, err)
				}
				if _, ok, err := s.Recovery(); ok || err != nil {
					t.Errorf("Recovery() = _, %v, %v; want false, nil", ok, err)
				}
			}

			ro, err := openAt(t, path, Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("Open(schema %d, read-only) = %v", schema, err)
			}
			check(ro)
			if ro.ID() != "" {
				t.Errorf("ID() of a legacy ledger opened read-only = %q, want \"\"", ro.ID())
			}
			closeStore(t, ro)

			s, err := openAt(t, path, Options{})
			if err != nil {
				t.Fatalf("Open(schema %d) = %v", schema, err)
			}
			check(s)
			var v int64
			var hasIDs bool
			_ = s.db.View(func(tx *bolt.Tx) error {
				v = bytesInt64(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
				hasIDs = tx.Bucket([]byte(bucketIDs)) != nil
				return nil
			})
			if v != schemaVersion || !hasIDs {
				t.Errorf("after a writable open: schema %d, ids bucket %v; want %d, true", v, hasIDs, schemaVersion)
			}
			if !validID(s.ID()) {
				t.Errorf("ID() after a writable open = %q, want 16 hex digits", s.ID())
			}
			// Rewriting an old entry writes schema 3 and indexes its identity.
			owed.FileID, owed.Placement, owed.MovedTo = "fd01:77", Moved, "_uploaded/Leads/1/c.pdf"
			mustPut(t, s, owed)
			if got, ok, err := s.ByFileID("fd01:77"); err != nil || !ok || diffEntry(got, owed) != "" {
				t.Errorf("ByFileID after rewriting a legacy entry = %+v, %v, %v", got, ok, err)
			}
			owed.FileID, owed.Placement, owed.MovedTo = "", Unplaced, ""
		})
	}
}

// legacyRecord is e as schema 1 stored it.
func legacyRecord(e Entry) record {
	r := record{
		Path: e.Path, Size: e.Size, ModTime: e.ModTime, Module: e.Module, RecordID: e.RecordID,
		State: e.State, Attempts: e.Attempts, LastError: e.LastError, AttemptStart: e.AttemptStart,
		AttachmentID: e.AttachmentID, SHA256: e.SHA256, Link: e.Link, MovedTo: e.MovedTo,
		Created: e.Created, Updated: e.Updated,
	}
	if e.Placement == Deleted {
		r.MovedTo = legacyDeleted
	}
	return r
}

func TestBinaryValueIsSmall(t *testing.T) {
	e := Entry{Path: "Leads/3477061000005177002 Acme Ltd/scans/page-0001.pdf", Size: 32768, ModTime: time.Now(),
		Module: "Leads", RecordID: "3477061000005177002", State: Uploaded, Attempts: 1,
		AttemptStart: time.Now(), AttachmentID: "3477061000012345678",
		SHA256:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		MovedTo: "_uploaded/Leads/3477061000005177002 Acme Ltd/scans/page-0001.pdf", Created: time.Now(), Updated: time.Now()}
	bin, _ := encode(e)
	js, _ := json.Marshal(legacyRecord(e))
	t.Logf("binary %d bytes, JSON %d bytes", len(bin), len(js))
	if len(bin)*2 > len(js) {
		t.Errorf("binary value is %d bytes, JSON %d: expected at most half", len(bin), len(js))
	}
}

func FuzzDecode(f *testing.F) {
	e := Entry{Path: "p", Size: 1, ModTime: time.Unix(1, 0), State: Pending, SHA256: "zz"}
	v, _ := encode(e)
	f.Add([]byte(e.Key()), v)
	f.Add([]byte("k"), []byte(`{"path":"p","state":"pending"}`))
	f.Add([]byte("k"), []byte{2, 0xff})
	f.Add([]byte("k"), []byte(`{"path":"p","state":"uploaded","moved_to":"(deleted)"}`))
	e.Placement, e.MovedTo, e.Verify, e.FileID = Moved, "_uploaded/p", true, "803:1f2e"
	v, _ = encode(e)
	f.Add([]byte(e.Key()), v)
	f.Fuzz(func(t *testing.T, key, val []byte) {
		got, err := decode(key, val)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same entry.
		again, err := encode(got)
		if err != nil {
			return
		}
		back, err := decode(key, again)
		if err != nil || back.State != got.State || back.AttachmentID != got.AttachmentID || back.Size != got.Size || back.SHA256 != got.SHA256 ||
			back.Placement != got.Placement || back.MovedTo != got.MovedTo || back.Verify != got.Verify || back.FileID != got.FileID {
			t.Fatalf("re-decode = %+v, %v; want %+v", back, err, got)
		}
	})
}
