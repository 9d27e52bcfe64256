package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"crmdrop/config"
	"crmdrop/zoho/zohotest"
)

// dropMany drops n small distinct files over a few records and returns them keyed as
// Module/Record/Name with their bodies.
func (h *harness) dropMany(n int, prefix string) map[string]string {
	want := map[string]string{}
	for i := range n {
		rec := fmt.Sprintf("%d", 3477061000000000000+int64(i%20))
		name := fmt.Sprintf("%s-%03d.pdf", prefix, i)
		body := fmt.Sprintf("%s body %d %s", prefix, i, strings.Repeat("z", i%97))
		h.drop("Leads/"+rec+"/"+name, body)
		want["Leads/"+rec+"/"+name] = body
	}
	return want
}

// exactlyOnce fails the test unless the fake holds each wanted file once, intact.
func exactlyOnce(t *testing.T, fake *zohotest.Server, want map[string]string) (missing, doubled int) {
	t.Helper()
	seen := map[string]int{}
	for _, a := range fake.Uploads() {
		key := a.Module + "/" + a.RecordID + "/" + a.FileName
		seen[key]++
		if body, ok := want[key]; ok && a.SHA256 != sum(body) {
			t.Errorf("%s stored with the wrong content", key)
		}
	}
	for key := range want {
		if seen[key] == 0 {
			missing++
			t.Errorf("%s never stored", key)
		} else if seen[key] > 1 {
			doubled++
			t.Errorf("%s stored %d times", key, seen[key])
		}
	}
	return missing, doubled
}

func TestFaultsEveryFileStoredOnce(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{Logf: func(string, ...any) {}})
	fake.SetFaultRates(zohotest.FaultRates{Before500: 0.15, After500: 0.10, TooMany: 0.10, Reset: 0.05}, 7)
	fake.SetRetryAfter(time.Second)
	h := newHarness(t, fake, func(c *config.Config) {
		c.Workers = 8
		c.Retry.MaxDelay = 300 * time.Millisecond
	})
	h.start()
	want := h.dropMany(200, "fault")
	waitFor(t, "all 200 uploaded", 2*time.Minute, func() bool { return h.eventCount("uploaded") == 200 })
	missing, doubled := exactlyOnce(t, fake, want)
	c := fake.Requests()
	t.Logf("RESULT files=200 stored=%d missing=%d doubled=%d upload_requests=%d lists=%d faults=%d adopted=%d",
		len(fake.Uploads()), missing, doubled, c.Uploads, c.Lists, c.Faults, h.adopted())
	if c.Faults == 0 {
		t.Error("no faults were injected: the test proved nothing")
	}
	if h.eventCount("failed") != 0 {
		t.Errorf("%d files failed; transient and ambiguous faults must never fail a file", h.eventCount("failed"))
	}
}

func (h *harness) adopted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Adopted {
			n++
		}
	}
	return n
}

func TestShortTokensAcrossRestarts(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{TokenLifetime: 2 * time.Second, Logf: func(string, ...any) {}})
	h := newHarness(t, fake, nil)
	want := map[string]string{}
	for round := range 4 {
		h.start()
		for k, v := range h.dropMany(15, fmt.Sprintf("round%d", round)) {
			want[k] = v
		}
		waitFor(t, "round uploaded", time.Minute, func() bool { return h.eventCount("uploaded") == len(want) })
		time.Sleep(1500 * time.Millisecond) // the scenario: let the token age between restarts
		h.shutdown()
	}
	exactlyOnce(t, fake, want)
	minted := fake.Minted()
	t.Logf("RESULT restarts=4 files=%d tokens_minted=%d", len(want), len(minted))
	for i := range minted {
		n := 0
		for _, m := range minted[i:] {
			if m.Sub(minted[i]) < 10*time.Minute {
				n++
			}
		}
		if n > 10 {
			t.Fatalf("%d tokens minted within 10 minutes, over Zoho's limit of 10", n)
		}
	}
	if len(minted) < 2 {
		t.Errorf("minted %d tokens over ~8s of 2s tokens: refresh never happened", len(minted))
	}
}

func TestBlockedByScopeMismatchThenResumes(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{Logf: func(string, ...any) {}})
	fake.SetScopeMismatch(true)
	addr := freeAddr(t)
	h := newHarness(t, fake, func(c *config.Config) {
		c.Retry.BlockedProbe = 200 * time.Millisecond
		c.AdminListen = addr
	})
	h.start()
	want := h.dropMany(10, "blocked")
	waitFor(t, "blocked", 20*time.Second, func() bool { return strings.Contains(h.d.Blocked(), "OAUTH_SCOPE_MISMATCH") })
	code, body := get(t, "http://"+addr+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "OAUTH_SCOPE_MISMATCH") {
		t.Errorf("/healthz while blocked = %d %q, want 503 with the reason", code, body)
	}
	for key := range want {
		if !exists(h.path(key)) {
			t.Errorf("%s moved while blocked; files must stay in place", key)
		}
	}
	if n := h.eventCount("failed"); n != 0 {
		t.Errorf("%d files failed while blocked, want 0", n)
	}
	fake.SetScopeMismatch(false)
	waitFor(t, "all uploaded after unblock", time.Minute, func() bool { return h.eventCount("uploaded") == len(want) })
	exactlyOnce(t, fake, want)
	if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after recovery = %d %q, want 200", code, body)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A file saved again while its ambiguous upload waits to be retried: the retry adopts
// what the first attempt stored (the old version), and the new version must still be
// uploaded, not moved to _uploaded/ unsent.
func TestFileChangedWhileAmbiguousUploadWaits(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{Logf: func(string, ...any) {}})
	fake.FailNext(1, zohotest.Fault500After)
	h := newHarness(t, fake, func(c *config.Config) {
		c.Retry.InitialDelay = 3 * time.Second
		c.Retry.MaxDelay = 3 * time.Second
	})
	h.start()
	p := h.drop("Leads/1/report.txt", "version 1")
	waitFor(t, "the ambiguous first attempt", 20*time.Second, func() bool { return fake.Requests().Faults == 1 })
	if err := os.WriteFile(p, []byte("version 2, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both versions attached", 30*time.Second, func() bool { return h.eventCount("uploaded") == 2 })
	sums := map[string]int{}
	for _, a := range fake.Uploads() {
		sums[a.SHA256]++
	}
	if sums[sum("version 1")] != 1 || sums[sum("version 2, longer")] != 1 || len(fake.Uploads()) != 2 {
		t.Errorf("fake holds %+v; want version 1 and version 2 once each", fake.Uploads())
	}
	if exists(p) {
		t.Error("the new version is still in the inbox")
	}
}
