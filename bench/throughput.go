package main

import (
	"bufio"
	"cmp"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

//go:embed naive.sh
var naiveScript []byte

// batch is the set of files scenarios 1 and 2 drop: files × size over nrec records.
type batch struct {
	files, nrec, size int
	latency, settle   time.Duration
}

func (b *bench) batch() batch {
	if b.quick {
		return batch{files: 50, nrec: 10, size: 32 << 10, latency: 50 * time.Millisecond, settle: 200 * time.Millisecond}
	}
	return batch{files: 1000, nrec: 100, size: 32 << 10, latency: 50 * time.Millisecond, settle: time.Second}
}

// ideal is files × latency / workers + settle: every worker busy from the moment the
// files have settled, and nothing but the fake's latency in the way.
func (bt batch) ideal(workers int) time.Duration {
	return time.Duration(bt.files)*bt.latency/time.Duration(workers) + bt.settle
}

// dropped is the result of one run of a batch.
type dropped struct {
	elapsed time.Duration // first file written -> last upload answered (stored + latency)
	cpu     time.Duration // the daemon's CPU time over the run
	hwm     int64         // the daemon's peak RSS
	queued  time.Duration // first file written -> the dispatcher queued the last file
	gap     time.Duration // median time between an answer and the next request (1 worker)
}

// drop writes the batch's files straight into their record folders (as a scanner or a
// copy does: create, write, close) and returns what the fake must end up holding and
// when the first write began. The contents are made before the clock starts.
func (bt batch) drop(inbox string) (map[string]bool, time.Time, error) {
	recs := records(bt.nrec)
	type file struct {
		path string
		data []byte
	}
	files := make([]file, bt.files)
	want := map[string]bool{}
	for i := range files {
		r := recs[i%len(recs)]
		name := fmt.Sprintf("scan-%04d.pdf", i)
		files[i] = file{filepath.Join(inbox, filepath.FromSlash(r.Rel), name), content(bt.size, i)}
		want[r.ID+"/"+name] = true
	}
	t0 := time.Now()
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return nil, t0, err
		}
	}
	return want, t0, nil
}

// prepare makes a trial's folder, inbox with record folders, and fake.
func (b *bench) prepare(name string, bt batch) (dir, inbox string, fk *fakeRun, err error) {
	if dir, err = b.workDir(name); err != nil {
		return
	}
	inbox = filepath.Join(dir, "inbox")
	if err = makeRecords(inbox, records(bt.nrec)); err != nil {
		return
	}
	fk, err = startFake(bt.latency)
	return
}

// crmdropBatch runs the batch through a freshly started daemon with workers workers.
func (b *bench) crmdropBatch(bt batch, workers int) (dropped, error) {
	dir, inbox, fk, err := b.prepare(fmt.Sprintf("batch-w%d", workers), bt)
	if err != nil {
		return dropped{}, err
	}
	defer fk.close()
	cfg, err := writeConfig(dir, fk.srv, daemonConfig{Inbox: inbox, State: filepath.Join(dir, "state"), Workers: workers, Settle: bt.settle})
	if err != nil {
		return dropped{}, err
	}
	p, err := b.startSettled(cfg)
	if err != nil {
		return dropped{}, err
	}
	defer p.stop()
	cpu0, err := p.cpu()
	if err != nil {
		return dropped{}, err
	}
	want, t0, err := bt.drop(inbox)
	if err != nil {
		return dropped{}, err
	}
	if err := fk.rec.waitStored(bt.files, 5*bt.ideal(workers)+30*time.Second, p.alive); err != nil {
		return dropped{}, err
	}
	got := fk.rec.storedCopy()
	end := got[len(got)-1].at.Add(bt.latency)
	cpu1, err := p.cpu()
	if err != nil {
		return dropped{}, err
	}
	m, err := p.mem()
	if err != nil {
		return dropped{}, err
	}
	if err := p.stop(); err != nil {
		return dropped{}, err
	}
	if err := checkOnce(fk.rec.storedCopy(), want); err != nil {
		return dropped{}, fmt.Errorf("crmdrop with %d workers: %w", workers, err)
	}
	d := dropped{elapsed: end.Sub(t0), cpu: cpu1 - cpu0, hwm: m.HWM}
	if q := logTimes(p.logPath, `msg="file queued"`); len(q) > 0 {
		d.queued = q[len(q)-1].Sub(t0)
	}
	if workers == 1 {
		// One upload at a time: what the worker does between the fake's answer and
		// its next request is the daemon's own cost per file.
		arr := fk.rec.allArrivals()
		var gaps []time.Duration
		for i := 1; i < len(arr) && i < len(got); i++ {
			gaps = append(gaps, arr[i].Sub(got[i-1].at.Add(bt.latency)))
		}
		d.gap = median(gaps)
	}
	return d, nil
}

// logTimes returns the times of the daemon's log lines that contain s.
func logTimes(logPath, s string) []time.Time {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, s) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// throughput is scenario 1: the batch at 1, 4, 8 and 16 workers against the ideal.
func (b *bench) throughput() error {
	bt := b.batch()
	for _, w := range b.workers {
		// Several runs where they are short, the median reported: one slow fsync
		// burst on a shared disk moves a single run by 10%.
		reps := 3
		if b.quick || w == 1 {
			reps = 1
		}
		var runs []dropped
		for range reps {
			d, err := b.crmdropBatch(bt, w)
			if err != nil {
				return err
			}
			runs = append(runs, d)
		}
		slices.SortFunc(runs, func(x, y dropped) int { return cmp.Compare(x.elapsed, y.elapsed) })
		d := runs[(len(runs)-1)/2]
		spread := ""
		if len(runs) > 1 {
			spread = fmt.Sprintf("median of %d, %s–%s; ", len(runs), secs(runs[0].elapsed), secs(runs[len(runs)-1].elapsed))
		}
		ideal := bt.ideal(w)
		r := float64(d.elapsed) / float64(ideal)
		target, v := "", ""
		if w == 8 {
			target, v = "≤ 1.15 × ideal", verdict(r <= 1.15)
		}
		b.add(row{
			Scenario: "1 throughput",
			Metric:   fmt.Sprintf("%d × %d KiB, %v latency, workers %d: time (ideal %s)", bt.files, bt.size>>10, bt.latency, w, secs(ideal)),
			Target:   target,
			Result:   fmt.Sprintf("%s (%s%.0f files/s; all queued at %s%s; daemon CPU %s, peak RSS %s)", secs(d.elapsed), spread, float64(bt.files)/d.elapsed.Seconds(), secs(d.queued), gapText(d.gap), secs(d.cpu), mib(d.hwm)),
			Ratio:    ratio(r) + " ideal",
			Verdict:  v,
		})
	}
	return nil
}

// script is scenario 2: the same batch through bench/naive.sh, next to crmdrop with 8
// workers, one right after the other.
func (b *bench) script() error {
	for _, tool := range []string{"inotifywait", "curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install it (apt-get install -y inotify-tools curl)", tool)
		}
	}
	bt := b.batch()
	c, err := b.crmdropBatch(bt, 8)
	if err != nil {
		return err
	}
	s, err := b.naiveBatch(bt)
	if err != nil {
		return err
	}
	b.add(row{
		Scenario: "2 vs script",
		Metric:   fmt.Sprintf("%d × %d KiB, %v latency: inotifywait | curl -F, one at a time", bt.files, bt.size>>10, bt.latency),
		Result:   fmt.Sprintf("%s (%.0f files/s)", secs(s.elapsed), float64(bt.files)/s.elapsed.Seconds()),
	})
	b.add(row{
		Scenario: "2 vs script",
		Metric:   fmt.Sprintf("same files, crmdrop, 8 workers, settle %v", bt.settle),
		Target:   "report the ratio",
		Result:   fmt.Sprintf("%s (%.0f files/s)", secs(c.elapsed), float64(bt.files)/c.elapsed.Seconds()),
		Ratio:    ratio(float64(c.elapsed)/float64(s.elapsed)) + " script's time",
	})
	return nil
}

// naiveBatch runs the batch through naive.sh.
func (b *bench) naiveBatch(bt batch) (dropped, error) {
	dir, inbox, fk, err := b.prepare("naive", bt)
	if err != nil {
		return dropped{}, err
	}
	defer fk.close()
	script := filepath.Join(dir, "naive.sh")
	if err := os.WriteFile(script, naiveScript, 0o755); err != nil {
		return dropped{}, err
	}
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(),
		"INBOX="+inbox, "ZOHO_URL="+fk.srv.URL(),
		"CLIENT_ID=test-client-id", "CLIENT_SECRET=test-client-secret", "REFRESH_TOKEN=1000.test-refresh-token")
	// Its own process group, to stop inotifywait and curl with it; and stopped if the
	// bench dies (naive.sh then takes its group down).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return dropped{}, err
	}
	if err := cmd.Start(); err != nil {
		return dropped{}, err
	}
	exited := make(chan error, 1)
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
	}()
	ready := make(chan struct{})
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "Watches established") && len(lines) > 0 {
				select {
				case <-ready:
				default:
					close(ready)
				}
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		return dropped{}, fmt.Errorf("naive.sh exited before watching: %v %s", err, strings.Join(lines, "; "))
	case <-time.After(30 * time.Second):
		return dropped{}, fmt.Errorf("naive.sh did not set up its watches within 30s")
	}
	want, t0, err := bt.drop(inbox)
	if err != nil {
		return dropped{}, err
	}
	timeout := time.Duration(bt.files)*(bt.latency+200*time.Millisecond) + 30*time.Second
	if err := fk.rec.waitStored(bt.files, timeout, nil); err != nil {
		return dropped{}, fmt.Errorf("naive.sh: %w", err)
	}
	got := fk.rec.storedCopy()
	if err := checkOnce(got, want); err != nil {
		return dropped{}, fmt.Errorf("naive.sh: %w", err)
	}
	return dropped{elapsed: got[len(got)-1].at.Add(bt.latency).Sub(t0)}, nil
}

func gapText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("; answer → next request %s", secsFine(d))
}
