package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// large is scenario 3: one big file, the daemon's peak RSS while it uploads it, and its
// transfer time against curl -F sending the same file to the same fake. Runs alternate
// curl, crmdrop, curl, crmdrop, … so that drift on a noisy machine hits both alike.
func (b *bench) large() error {
	if _, err := exec.LookPath("curl"); err != nil {
		return fmt.Errorf("curl not found: install it (apt-get install -y curl)")
	}
	size, reps, settle := int64(100<<20), 7, time.Second
	if b.quick {
		size, reps, settle = 8<<20, 1, 200*time.Millisecond
	}
	const latency = 50 * time.Millisecond
	dir, err := b.workDir("large")
	if err != nil {
		return err
	}
	inbox := filepath.Join(dir, "inbox")
	rec := records(1)[0]
	if err := makeRecords(inbox, []record{rec}); err != nil {
		return err
	}
	src := filepath.Join(dir, "big.bin") // outside the inbox; hard-linked in for crmdrop
	if err := writeBig(src, size); err != nil {
		return err
	}
	fk, err := startFake(latency)
	if err != nil {
		return err
	}
	defer fk.close()
	token, err := mintToken(fk.srv)
	if err != nil {
		return err
	}
	cfg, err := writeConfig(dir, fk.srv, daemonConfig{Inbox: inbox, State: filepath.Join(dir, "state"), Workers: 4, Settle: settle})
	if err != nil {
		return err
	}
	p, err := b.startSettled(cfg)
	if err != nil {
		return err
	}
	defer p.stop()
	idle, err := p.mem()
	if err != nil {
		return err
	}
	// transfer returns how long the fake took from the request's arrival to the whole
	// file stored, for the n-th upload (uploads go one at a time).
	transfer := func(n int) (time.Duration, error) {
		if err := fk.rec.waitStored(n, 2*time.Minute, p.alive); err != nil {
			return 0, err
		}
		s := fk.rec.storedCopy()[n-1]
		arr := fk.rec.arrivals(rec.uploadPath())
		if len(arr) != n {
			return 0, fmt.Errorf("%d upload requests for %d uploads: a retry?", len(arr), n)
		}
		if s.a.Size != size {
			return 0, fmt.Errorf("stored %s with %d bytes, want %d", s.a.FileName, s.a.Size, size)
		}
		return s.at.Sub(arr[n-1]), nil
	}
	var curlT, curlWall, crmT, crmPickup []time.Duration
	var (
		curlRSS int64
		curlCPU time.Duration
	)
	cpu0, err := p.cpu()
	if err != nil {
		return err
	}
	n := 0
	for i := range reps {
		// curl, as the vendor's shell samples post a file.
		cmd := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
			"-H", "Authorization: Zoho-oauthtoken "+token,
			"-F", fmt.Sprintf("file=@%s;filename=curl-%d.bin", src, i),
			fk.srv.URL()+rec.uploadPath())
		start := time.Now()
		out, err := cmd.Output()
		wall := time.Since(start)
		if err != nil || strings.TrimSpace(string(out)) != "200" {
			return fmt.Errorf("curl upload: %v, HTTP %s", err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			curlRSS = max(curlRSS, ru.Maxrss*1024)
			curlCPU += time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
		n++
		t, err := transfer(n)
		if err != nil {
			return err
		}
		curlT, curlWall = append(curlT, t), append(curlWall, wall)

		// crmdrop: the same file appears in the record folder.
		name := fmt.Sprintf("crmdrop-%d.bin", i)
		dropped := time.Now()
		if err := os.Link(src, filepath.Join(inbox, filepath.FromSlash(rec.Rel), name)); err != nil {
			return err
		}
		n++
		if t, err = transfer(n); err != nil {
			return err
		}
		if got := fk.rec.storedCopy()[n-1].a.FileName; got != name {
			return fmt.Errorf("stored %s, want %s", got, name)
		}
		crmT = append(crmT, t)
		crmPickup = append(crmPickup, fk.rec.arrivals(rec.uploadPath())[n-1].Sub(dropped)-settle)
	}
	cpu1, err := p.cpu()
	if err != nil {
		return err
	}
	// Let the last answer, ledger commit and move finish before reading the peak.
	if err := p.waitLog(fmt.Sprintf(`msg="file uploaded" path=%s/crmdrop-%d.bin`, rec.Rel, reps-1), time.Minute); err != nil {
		return err
	}
	m, err := p.mem()
	if err != nil {
		return err
	}
	if err := p.stop(); err != nil {
		return err
	}
	c, k := median(curlT), median(crmT)
	thr := func(d time.Duration) string { return fmt.Sprintf("%.0f MiB/s", float64(size)/(1<<20)/d.Seconds()) }
	b.add(row{
		Scenario: "3 large file",
		Metric:   fmt.Sprintf("%s file: daemon peak RSS (VmHWM; %s before the first upload)", mib(size), mib(idle.HWM)),
		Target:   "≤ 48 MiB",
		Result:   mib(m.HWM),
		Ratio:    ratio(float64(m.HWM)/(48<<20)) + " target",
		Verdict:  verdict(m.HWM <= 48<<20),
	})
	b.add(row{
		Scenario: "3 large file",
		Metric:   fmt.Sprintf("transfer, request arrival → stored, median of %d: curl -F (wall %s; curl's CPU %s per file, RSS %s)", reps, secs(median(curlWall)), secs(curlCPU/time.Duration(reps)), mib(curlRSS)),
		Result:   fmt.Sprintf("%s (%s)", secs(c), thr(c)),
	})
	b.add(row{
		Scenario: "3 large file",
		Metric:   fmt.Sprintf("same, crmdrop (daemon CPU %s per file; pickup after settle %s)", secs((cpu1-cpu0)/time.Duration(reps)), secs(median(crmPickup))),
		Target:   "≥ 0.8 × curl's throughput",
		Result:   fmt.Sprintf("%s (%s)", secs(k), thr(k)),
		Ratio:    ratio(float64(c)/float64(k)) + " curl's",
		Verdict:  verdict(float64(c)/float64(k) >= 0.8),
	})
	return nil
}

// writeBig writes size pseudo-random bytes to path, a MiB at a time.
func writeBig(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := int64(0); i < size; i += 1 << 20 {
		if _, err := w.Write(content(int(min(1<<20, size-i)), int(i>>20))); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// median of ds (the lower middle for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100 + 0.999999999)
	return s[min(max(rank, 1), len(s))-1]
}
