package watcher

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSettleRestart is the settler's share of a daemon restart on an inbox of
// 100,000 files: the first scan observes them all, they come due together, and each
// re-stat is checked and emitted. No file system: the settler's own CPU and memory.
func BenchmarkSettleRestart(b *testing.B) {
	const n = 100_000
	rels := make([]string, n)
	ids := make([]ident, n)
	for i := range rels {
		rels[i] = fmt.Sprintf("Leads/%d/doc-%03d.pdf", 3477061000000100000+i/100, i%100)
		ids[i] = ident{size: int64(512 + i%1024), sec: 1_700_000_000 + int64(i), nsec: int32(i)}
	}
	const quiet = 5 * time.Second
	b.ReportAllocs()
	for b.Loop() {
		s := newSettler(quiet, t0)
		for i, rel := range rels {
			s.observe(rel, ids[i], t0)
		}
		due := s.due(t0.Add(quiet))
		emitted := 0
		for i, r := range due {
			if _, ok := s.check(r.Rel, identOfReady(due[i]), t0.Add(quiet)); ok {
				emitted++
			}
		}
		if emitted != n {
			b.Fatalf("emitted %d of %d files", emitted, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/file")
}
