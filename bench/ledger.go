package main

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"crmdrop/store"
)

// putsPerFile is how many ledger writes the daemon makes for one uploaded file with
// after_upload: move: pending (dispatcher), uploading, uploaded, and where it moved.
const putsPerFile = 4

// ledger is scenario 7: durable (fsync) state transitions per second through the store
// the daemon uses, on a ledger already holding many entries, with one writer (the
// dispatcher, which writes one file at a time) and with 17 (16 workers + dispatcher;
// the store group-commits concurrent writes). The need is scenario 1 at 16 workers
// running at its ideal rate.
func (b *bench) ledger() error {
	prefill, dur := 100_000, 3*time.Second
	if b.quick {
		prefill, dur = 1000, 500*time.Millisecond
	}
	dir, err := b.workDir("ledger")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "ledger.db")
	now := time.Now()
	entries := make([]store.Entry, prefill)
	for i := range entries {
		entries[i] = ledgerEntry(i, now)
		entries[i].State, entries[i].AttachmentID = store.Uploaded, fmt.Sprint(3477061000030000000+i)
	}
	if err := writeLedger(path, entries); err != nil {
		return err
	}
	s, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()

	bt := b.batch()
	filesPerSec := 16 / bt.latency.Seconds() // scenario 1 at 16 workers, ideal
	var next atomic.Int64
	next.Store(int64(prefill))
	for _, writers := range []int{1, 17} {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			lats []time.Duration
			werr error
		)
		start := time.Now()
		deadline := start.Add(dur)
		for range writers {
			wg.Go(func() {
				var mine []time.Duration
				for time.Now().Before(deadline) {
					i := int(next.Add(1))
					e := ledgerEntry(i, now)
					for _, st := range []store.State{store.Pending, store.Uploading, store.Uploaded, store.Uploaded} {
						e.State = st
						switch {
						case st == store.Uploaded && e.AttachmentID == "":
							e.AttachmentID = fmt.Sprint(3477061000030000000 + i)
						case st == store.Uploaded:
							e.MovedTo = "_uploaded/" + e.Path
						}
						t := time.Now()
						if err := s.Put(e); err != nil {
							mu.Lock()
							werr = err
							mu.Unlock()
							return
						}
						mine = append(mine, time.Since(t))
					}
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		if werr != nil {
			return werr
		}
		rate := float64(len(lats)) / time.Since(start).Seconds()
		need := filesPerSec * putsPerFile
		who := "17 writers (16 workers + dispatcher)"
		if writers == 1 {
			need = filesPerSec // the dispatcher's one pending write per file, in series
			who = "1 writer (the dispatcher's serial pending writes)"
		}
		b.add(row{
			Scenario: "7 ledger",
			Metric:   fmt.Sprintf("fsync'd Puts/s, %s, ledger of %d entries (Put p50 %s, p99 %s)", who, prefill, secsFine(percentile(lats, 50)), secsFine(percentile(lats, 99))),
			Target:   fmt.Sprintf("≥ %.0f/s (scenario 1, 16 workers, ideal)", need),
			Result:   fmt.Sprintf("%.0f/s", rate),
			Ratio:    ratio(rate/need) + " need",
			Verdict:  verdict(rate >= need),
		})
	}
	return nil
}

func ledgerEntry(i int, now time.Time) store.Entry {
	return store.Entry{
		Path:    fmt.Sprintf("Leads/%d/scan-%07d.pdf", 3477061000000100000+i%1000, i),
		Size:    32 << 10,
		ModTime: now.Add(-time.Duration(i) * time.Millisecond),
		Module:  "Leads", RecordID: fmt.Sprint(3477061000000100000 + i%1000),
		Attempts: 1, AttemptStart: now, Created: now, Updated: now,
	}
}

// secsFine prints sub-millisecond durations too.
func secsFine(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return secs(d)
}
