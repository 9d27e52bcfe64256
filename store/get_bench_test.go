package store

import (
	"fmt"
	"testing"
)

// BenchmarkGet is the daemon's lookup of one settled file in a ledger of 100,000
// entries: what a restart on a big inbox does once per file.
func BenchmarkGet(b *testing.B) {
	const n = 100_000
	s := benchStore(b, false)
	es := make([]Entry, 0, 5000)
	for i := range n {
		e := benchEntry(i)
		e.State, e.AttachmentID = Uploaded, fmt.Sprint(5000000000000+i)
		es = append(es, e)
		if len(es) == cap(es) {
			if err := s.PutAll(es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = benchEntry((i * 7919) % n).Key() // not in key order, as files settle
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e, ok, err := s.Get(keys[i%n])
		if err != nil || !ok || e.State != Uploaded {
			b.Fatalf("Get = %v, %v, %v; want the uploaded entry", e.State, ok, err)
		}
	}
}
