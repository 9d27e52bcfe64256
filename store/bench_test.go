package store

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The benchmarks run with fsync (sync=true, what the daemon does; its cost is the
// disk's) and without (sync=false, the store's own CPU cost). puts/commit shows how
// many writes shared each transaction.

func benchStore(b *testing.B, sync bool) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "ledger.db"), Options{NoSync: !sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// commits returns the number of write transactions committed so far.
func commits(tb testing.TB, s *Store) int {
	tb.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		tb.Fatal(err)
	}
	return id
}

func benchEntry(i int) Entry {
	e := entry(fmt.Sprintf("Leads/1000000231009 Acme Corp/scans/page-%08d.pdf", i), int64(i), t0, Pending)
	e.Created, e.Updated = t0, t0
	return e
}

// forSync runs f with and without fsync and reports puts per commit.
func forSync(b *testing.B, putsPerOp int, f func(b *testing.B, s *Store)) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s := benchStore(b, sync)
			before := commits(b, s)
			f(b, s)
			b.StopTimer()
			if n := commits(b, s) - before; n > 0 {
				b.ReportMetric(float64(b.N*putsPerOp)/float64(n), "puts/commit")
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	forSync(b, 1, func(b *testing.B, s *Store) {
		for i := 0; b.Loop(); i++ {
			if err := s.Put(benchEntry(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPutParallel runs 8 writers per CPU. The via=db.Batch variant commits the same
// work through bbolt's Batch, the design write replaced.
func BenchmarkPutParallel(b *testing.B) {
	for _, via := range []string{"store", "db.Batch"} {
		b.Run("via="+via, func(b *testing.B) {
			forSync(b, 1, func(b *testing.B, s *Store) {
				put := s.Put
				if via == "db.Batch" {
					put = func(e Entry) error {
						op, err := preparePut(e)
						if err != nil {
							return err
						}
						return s.db.Batch(op.apply)
					}
				}
				b.SetParallelism(8)
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := put(benchEntry(int(n.Add(1)))); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkTransition is one file's life: Put pending, then uploading, then uploaded
// with its attachment id: three commits per op.
func BenchmarkTransition(b *testing.B) {
	forSync(b, 3, func(b *testing.B, s *Store) {
		for i := 0; b.Loop(); i++ {
			e := benchEntry(i)
			for _, st := range []State{Pending, Uploading, Uploaded} {
				e.State = st
				if st == Uploaded {
					e.AttachmentID = fmt.Sprint(5000000000000 + i)
				}
				if err := s.Put(e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkCodec is the JSON encoding's share of a Put and a Get.
func BenchmarkCodec(b *testing.B) {
	e := benchEntry(1)
	e.State, e.Attempts, e.AttachmentID, e.SHA256 = Uploaded, 2, "5000000012345", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	e.LastError, e.AttemptStart = "zoho: TOO_MANY_REQUESTS (HTTP 429): slow down", t0
	k := []byte(e.Key())
	for b.Loop() {
		v, err := encode(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decode(k, v); err != nil {
			b.Fatal(err)
		}
	}
}
