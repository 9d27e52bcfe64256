package store

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestReadsSchema1Ledger opens a ledger written by the first release (JSON values,
// schema 1): its entries read back, and the file is marked schema 2 so that an older
// build refuses it rather than misreading the binary values written from now on.
func TestReadsSchema1Ledger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	old := Entry{Path: "Leads/1/a.pdf", Size: 3, ModTime: time.Unix(1700000000, 5).UTC(), Module: "Leads", RecordID: "1",
		State: Uploaded, AttachmentID: "42", SHA256: "abc", Created: time.Unix(1700000001, 0).UTC()}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	val, _ := json.Marshal(record(old))
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), int64Bytes(1)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketEntries)).Put([]byte(old.Key()), val)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(schema 1) = %v", err)
	}
	defer s.Close()
	got, ok, err := s.Get(old.Key())
	if err != nil || !ok || got.AttachmentID != "42" || !got.ModTime.Equal(old.ModTime) || got.SHA256 != "abc" {
		t.Fatalf("Get = %+v, %v, %v; want the schema-1 entry", got, ok, err)
	}
	var v int64
	s.db.View(func(tx *bolt.Tx) error {
		v = bytesInt64(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		return nil
	})
	if v != schemaVersion {
		t.Errorf("schema after open = %d, want %d", v, schemaVersion)
	}
}

func TestBinaryValueIsSmall(t *testing.T) {
	e := Entry{Path: "Leads/3477061000005177002 Acme Ltd/scans/page-0001.pdf", Size: 32768, ModTime: time.Now(),
		Module: "Leads", RecordID: "3477061000005177002", State: Uploaded, Attempts: 1,
		AttemptStart: time.Now(), AttachmentID: "3477061000012345678",
		SHA256:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		MovedTo: "_uploaded/Leads/3477061000005177002 Acme Ltd/scans/page-0001.pdf", Created: time.Now(), Updated: time.Now()}
	bin, _ := encode(e)
	js, _ := json.Marshal(record(e))
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
		if err != nil || back.State != got.State || back.AttachmentID != got.AttachmentID || back.Size != got.Size || back.SHA256 != got.SHA256 {
			t.Fatalf("re-decode = %+v, %v; want %+v", back, err, got)
		}
	})
}

// A read-only open (status, list with the daemon down) reads a schema-1 ledger as it is:
// marking it is the writer's job, and a read-only transaction could not.
func TestReadOnlyOpensSchema1Ledger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), int64Bytes(1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open(schema 1, read-only) = %v", err)
	}
	ro.Close()
}
