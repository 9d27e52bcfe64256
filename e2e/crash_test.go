package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

// TestCrashAnyInstant kills the daemon with SIGKILL at random instants while files are
// being dropped and uploaded, restarts it each time, and then checks the fake holds
// every file exactly once. It ends with a graceful SIGTERM stop.
func TestCrashAnyInstant(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real binary; skipped with -short")
	}
	kills, files := 20, 300
	if soak() {
		kills, files = 200, 3000
	}
	fake := zohotest.NewServer(t, zohotest.Options{Latency: 40 * time.Millisecond, Logf: func(string, ...any) {}})
	e := newEnv(t, fake, "")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t.Logf("kills=%d files=%d", kills, files)

	want := map[string]string{}
	next := 0
	dropSome := func(n int) {
		for ; n > 0 && next < files; n-- {
			rec := fmt.Sprintf("%d", 1000000000000+next%30)
			name := fmt.Sprintf("doc-%04d.pdf", next)
			body := fmt.Sprintf("file %d %s", next, string(make([]byte, rng.IntN(4096))))
			e.drop("Leads/"+rec+"/"+name, body)
			want["Leads/"+rec+"/"+name] = body
			next++
		}
	}

	for i := range kills {
		dropSome(files / kills)
		cmd := e.start()
		time.Sleep(time.Duration(50+rng.IntN(700)) * time.Millisecond) // the random instant
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if i%5 == 4 {
			t.Logf("after %d kills: %d stored", i+1, len(fake.Uploads()))
		}
	}
	dropSome(files)

	started := strings.Count(e.log(), "crmdrop started")
	cmd := e.start()
	// SIGTERM is graceful once the daemon runs; before its signal handler exists the
	// default action applies, so wait for it (all files may already be done).
	waitFor(t, "the last daemon to start", time.Minute, func() bool { return strings.Count(e.log(), "crmdrop started") > started })
	waitFor(t, "every file uploaded and moved", 3*time.Minute, func() bool {
		return len(fake.Uploads()) >= files && countFiles(filepath.Join(e.inbox, "_uploaded")) == files
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Error("daemon did not exit within 15s of SIGTERM")
	}

	missing, doubled := checkExactlyOnce(t, fake, want)
	left := countFiles(e.inbox) - countFiles(filepath.Join(e.inbox, "_uploaded"))
	if left != 0 {
		t.Errorf("%d files left outside _uploaded/", left)
	}
	adopted := strings.Count(e.log(), "adopted=true")
	t.Logf("RESULT kills=%d files=%d stored=%d missing=%d doubled=%d adopted_after_crash=%d tokens_minted=%d",
		kills, files, len(fake.Uploads()), missing, doubled, adopted, len(fake.Minted()))
	if len(fake.Minted()) > 10 {
		t.Errorf("minted %d tokens, over the 10-per-10-minutes budget", len(fake.Minted()))
	}
	if t.Failed() {
		os.WriteFile(filepath.Join(os.TempDir(), "crmdrop-crash.log"), []byte(e.log()), 0o644)
		t.Logf("daemon log saved to %s", filepath.Join(os.TempDir(), "crmdrop-crash.log"))
	}
}

// TestGracefulStopMidUpload stops the daemon with SIGTERM while uploads are in flight
// and slow; it must exit 0 within 15 s, and a restart must finish without doubles.
func TestGracefulStopMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real binary; skipped with -short")
	}
	fake := zohotest.NewServer(t, zohotest.Options{Latency: 2 * time.Second, Logf: func(string, ...any) {}})
	e := newEnv(t, fake, "")
	want := map[string]string{}
	for i := range 12 {
		rel := fmt.Sprintf("Deals/42/slow-%02d.txt", i)
		want[rel] = fmt.Sprintf("slow %d", i)
		e.drop(rel, want[rel])
	}
	cmd := e.start()
	waitFor(t, "uploads in flight", 30*time.Second, func() bool { return fake.InFlight() > 0 })
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0\n%s", err, e.log())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("graceful stop took %v, want under 15s", d)
	}
	fake.SetLatency(0)
	cmd = e.start()
	waitFor(t, "all uploaded", time.Minute, func() bool { return countFiles(filepath.Join(e.inbox, "_uploaded")) == len(want) })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	checkExactlyOnce(t, fake, want)
}
