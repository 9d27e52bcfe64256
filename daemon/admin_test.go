package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"crmdrop/config"
	"crmdrop/zoho/zohotest"
)

// metric returns the value of one sample line of a /metrics scrape, or -1.
func metric(scrape, sample string) float64 {
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

func TestAdminEndpointsReportTheTruth(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{Logf: func(string, ...any) {}})
	fake.InvalidRecord("Leads", "999")
	addr := freeAddr(t)
	h := newHarness(t, fake, func(c *config.Config) {
		c.AdminListen = addr
		c.Retry.BlockedProbe = 100 * time.Millisecond
	})
	h.start()
	h.drop("Leads/1/a.txt", "aaaa")
	h.drop("Leads/1/b.txt", "bbbbbb")
	h.drop("Leads/999/c.txt", "refused by the API")
	h.drop("Leads/1/setup.exe", "refused locally")
	waitFor(t, "outcomes", 20*time.Second, func() bool { return h.eventCount("uploaded") == 2 && h.eventCount("failed") == 2 })

	code, body := get(t, "http://"+addr+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	code, body = get(t, "http://"+addr+"/api/status")
	var st struct {
		State          string         `json:"state"`
		Counts         map[string]int `json:"counts"`
		InFlight       []any          `json:"in_flight"`
		RecentFailures []struct {
			Path, Error string
		} `json:"recent_failures"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("/api/status = %d %q: %v", code, body, err)
	}
	if st.State != "running" || st.Counts["uploaded"] != 2 || st.Counts["failed"] != 2 || st.Counts["pending"] != 0 || st.InFlight == nil || len(st.RecentFailures) != 2 {
		t.Errorf("/api/status = %+v, want running, 2 uploaded, 2 failed, in_flight [], 2 recent failures", st)
	}
	_, scrape := get(t, "http://"+addr+"/metrics")
	for sample, want := range map[string]float64{
		`crmdrop_uploads_total{result="uploaded"}`: 2,
		`crmdrop_uploads_total{result="failed"}`:   1, // the API refusal; the .exe never reached the uploader
		`crmdrop_uploaded_bytes_total`:             10,
		`crmdrop_files_discovered_total`:           3,
		`crmdrop_upload_duration_seconds_count`:    3,
		`crmdrop_uploads_in_flight`:                0,
		`crmdrop_queue_depth`:                      0,
		`crmdrop_blocked`:                          0,
		`crmdrop_tokens_minted_total`:              1,
	} {
		if got := metric(scrape, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}

	// A 429 is counted, and a blocked episode shows everywhere.
	fake.FailNext(1, zohotest.Fault429)
	h.drop("Leads/1/d.txt", "d")
	waitFor(t, "upload after 429", 20*time.Second, func() bool { return h.eventCount("uploaded") == 3 })
	fake.SetScopeMismatch(true)
	h.drop("Leads/1/e.txt", "e")
	waitFor(t, "blocked", 20*time.Second, func() bool { return h.d.Blocked() != "" })
	_, scrape = get(t, "http://"+addr+"/metrics")
	if got := metric(scrape, "crmdrop_blocked"); got != 1 {
		t.Errorf("crmdrop_blocked while blocked = %v, want 1", got)
	}
	if got := metric(scrape, "crmdrop_throttled_total"); got != 1 {
		t.Errorf("crmdrop_throttled_total = %v, want 1", got)
	}
	code, body = get(t, "http://"+addr+"/api/status")
	st.State = ""
	json.Unmarshal([]byte(body), &st)
	if code != 200 || st.State != "blocked" || !strings.Contains(body, "OAUTH_SCOPE_MISMATCH") {
		t.Errorf("/api/status while blocked = %d %s", code, body)
	}
	fake.SetScopeMismatch(false)
	waitFor(t, "unblocked", 20*time.Second, func() bool { return h.eventCount("uploaded") == 4 })
}
