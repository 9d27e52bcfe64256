package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// latency is scenario 5: files dropped one by one at random intervals (event mode),
// each into its own record folder so that its upload request can be told apart; the
// time from the file being written to its upload request arriving at the fake, minus
// settle, which the daemon waits on purpose.
func (b *bench) latency() error {
	n, gapMin, gapMax, settle := 300, 50*time.Millisecond, 150*time.Millisecond, time.Second
	if b.quick {
		n, gapMin, gapMax, settle = 20, 20*time.Millisecond, 60*time.Millisecond, 200*time.Millisecond
	}
	dir, err := b.workDir("latency")
	if err != nil {
		return err
	}
	inbox := filepath.Join(dir, "inbox")
	recs := records(n)
	if err := makeRecords(inbox, recs); err != nil {
		return err
	}
	fk, err := startFake(50 * time.Millisecond)
	if err != nil {
		return err
	}
	defer fk.close()
	cfg, err := writeConfig(dir, fk.srv, daemonConfig{Inbox: inbox, State: filepath.Join(dir, "state"), Workers: 4, Settle: settle})
	if err != nil {
		return err
	}
	p, err := b.startSettled(cfg)
	if err != nil {
		return err
	}
	defer p.stop()
	rng := rand.New(rand.NewPCG(5, 5))
	drops := make([]time.Time, n)
	for i, r := range recs {
		data := content(32<<10, i)
		if err := os.WriteFile(filepath.Join(inbox, filepath.FromSlash(r.Rel), "scan.pdf"), data, 0o644); err != nil {
			return err
		}
		drops[i] = time.Now()
		time.Sleep(gapMin + time.Duration(rng.Int64N(int64(gapMax-gapMin)))) // the arrival process
	}
	lat := make([]time.Duration, n)
	for i, r := range recs {
		at, err := fk.rec.waitArrival(r.uploadPath(), settle+30*time.Second, p.alive)
		if err != nil {
			return err
		}
		lat[i] = at.Sub(drops[i]) - settle
	}
	if err := p.stop(); err != nil {
		return err
	}
	p50, p99, worst := percentile(lat, 50), percentile(lat, 99), slicesMax(lat)
	b.add(row{
		Scenario: "5 pickup latency",
		Metric:   fmt.Sprintf("%d drops %v–%v apart, settle %v: drop → upload request − settle, p50", n, gapMin, gapMax, settle),
		Result:   secs(p50),
	})
	b.add(row{
		Scenario: "5 pickup latency",
		Metric:   fmt.Sprintf("same, p99 (max %s)", secs(worst)),
		Target:   "≤ 300 ms",
		Result:   secs(p99),
		Ratio:    ratio(float64(p99)/float64(300*time.Millisecond)) + " target",
		Verdict:  verdict(p99 <= 300*time.Millisecond),
	})
	return nil
}
