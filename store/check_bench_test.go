package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkOpenChecks measures what an open of a ledger of 100,000 uploaded entries
// spends on making sure of the file: checkPages (every Open), verify and bbolt's
// tx.Check (OpenOrRecover), and the opens themselves. Measured (2 vCPU Xeon, file in
// the page cache, 123 MB with file ids and MovedTo set): checkPages 75-80 ms, tx.Check
// 40 ms, verify 260-310 ms, Open 90-110 ms, OpenOrRecover 420-580 ms.
func BenchmarkOpenChecks(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "ledger.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	es := make([]Entry, 0, 5000)
	for i := range n {
		e := benchEntry(i)
		e.State, e.AttachmentID, e.FileID = Uploaded, fmt.Sprint(5000000000000+i), fmt.Sprintf("fd01:%x", 1000000+i)
		e.Placement, e.MovedTo = Moved, "_uploaded/"+e.Path
		es = append(es, e)
		if len(es) == cap(es) {
			if err := s.PutAll(es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		b.Logf("ledger of %d entries: %.1f MB", n, float64(fi.Size())/1e6)
	}
	view := func(b *testing.B, fn func(*bolt.Tx) error) {
		s, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for b.Loop() {
			if err := s.view(fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("checkPages", func(b *testing.B) {
		for b.Loop() {
			if err := checkPages(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tx.Check", func(b *testing.B) { view(b, checkTree) })
	b.Run("verify", func(b *testing.B) { view(b, verify) })
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			s, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			_ = s.Close()
		}
	})
	b.Run("OpenOrRecover", func(b *testing.B) {
		for b.Loop() {
			s, rec, err := OpenOrRecover(path, Options{})
			if err != nil || rec != nil {
				b.Fatal(err, rec)
			}
			_ = s.Close()
		}
	})
}
