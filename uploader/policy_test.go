package uploader

import (
	"context"
	"testing"
	"time"

	"crmdrop/internal/fakeclock"
)

func TestBackoff(t *testing.T) {
	s := time.Second
	tests := []struct {
		n                  int
		initial, max, hint time.Duration
		r                  float64
		want               time.Duration
	}{
		{1, 2 * s, 300 * s, 0, 0.5, 1 * s},
		{2, 2 * s, 300 * s, 0, 0.5, 2 * s},
		{3, 2 * s, 300 * s, 0, 0.5, 4 * s},
		{3, 2 * s, 300 * s, 0, 0.999, 7992 * time.Millisecond},
		{20, 2 * s, 300 * s, 0, 0.5, 150 * s},                       // capped window
		{1000, 2 * s, 300 * s, 0, 0.999, 299700 * time.Millisecond}, // no overflow
		{1, 2 * s, 300 * s, 30 * s, 0.1, 30 * s},                    // never below Retry-After
		{1, 2 * s, 300 * s, 600 * s, 0.1, 600 * s},                  // hint wins even over max
		{5, 2 * s, 300 * s, 0, 0, 0},                                // full jitter reaches zero
	}
	for _, tt := range tests {
		if got := backoff(tt.n, tt.initial, tt.max, tt.hint, tt.r); got != tt.want {
			t.Errorf("backoff(%d, %v, %v, %v, %v) = %v, want %v", tt.n, tt.initial, tt.max, tt.hint, tt.r, got, tt.want)
		}
	}
}

func TestPacerSlowsEveryoneAfterThrottle(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	p := newPacer(clk, 100*time.Millisecond, time.Minute)
	ctx := t.Context()
	if err := p.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if clk.Waiters() != 0 {
		t.Fatal("an unthrottled pacer made a caller wait")
	}
	p.throttled(3 * time.Second)
	if got := p.current(); got != 100*time.Millisecond {
		t.Fatalf("gap after first throttle = %v, want 100ms", got)
	}
	p.throttled(time.Second)
	if got := p.current(); got != 200*time.Millisecond {
		t.Fatalf("gap after second throttle = %v, want 200ms", got)
	}

	// Two workers now: neither may start before Retry-After, and they start a gap apart.
	started := make(chan time.Time, 2)
	for range 2 {
		go func() {
			if p.wait(ctx) == nil {
				started <- clk.Now()
			}
		}()
	}
	if !clk.WaitForWaiters(2, 5*time.Second) {
		t.Fatal("workers did not wait for the pacer")
	}
	clk.Advance(2999 * time.Millisecond)
	select {
	case <-started:
		t.Fatal("a worker started before Retry-After passed")
	default:
	}
	clk.Advance(time.Millisecond)
	first := <-started
	clk.Advance(200 * time.Millisecond)
	second := <-started
	if d := second.Sub(first); d != 200*time.Millisecond {
		t.Errorf("second worker started %v after the first, want 200ms", d)
	}

	for range 20 {
		p.succeeded()
	}
	if got := p.current(); got != 0 {
		t.Errorf("gap after 20 successes = %v, want 0 (recovered)", got)
	}
}

func TestPacerCapsGap(t *testing.T) {
	p := newPacer(fakeclock.New(time.Unix(0, 0)), 100*time.Millisecond, time.Second)
	for range 50 {
		p.throttled(0)
	}
	if got := p.current(); got != time.Second {
		t.Errorf("gap = %v, want capped at 1s", got)
	}
}

func TestGateLetsOneProberThrough(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	var reasons []string
	g := newGate(clk, func(r string) { reasons = append(reasons, r) })
	ctx := t.Context()
	if probe, err := g.wait(ctx); probe || err != nil {
		t.Fatalf("open gate: wait = %v, %v; want false, nil", probe, err)
	}
	g.block("OAUTH_SCOPE_MISMATCH", time.Minute)
	if g.blocked() != "OAUTH_SCOPE_MISMATCH" {
		t.Fatalf("blocked() = %q", g.blocked())
	}
	results := make(chan bool, 3)
	for range 3 {
		go func() {
			probe, err := g.wait(ctx)
			if err == nil {
				results <- probe
			}
		}()
	}
	if !clk.WaitForWaiters(3, 5*time.Second) {
		t.Fatal("waiters did not park")
	}
	select {
	case <-results:
		t.Fatal("a caller passed a closed gate before the probe time")
	default:
	}
	clk.Advance(time.Minute)
	if probe := <-results; !probe {
		t.Fatal("first caller through a closed gate was not the prober")
	}
	select {
	case <-results:
		t.Fatal("a second caller passed while the probe was running")
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	for range 2 {
		if probe := <-results; probe {
			t.Error("caller after the gate opened was told to probe")
		}
	}
	if len(reasons) != 2 || reasons[0] != "OAUTH_SCOPE_MISMATCH" || reasons[1] != "" {
		t.Errorf("onChange calls = %q, want [OAUTH_SCOPE_MISMATCH \"\"]", reasons)
	}
}

func TestGateWaitHonoursContext(t *testing.T) {
	g := newGate(fakeclock.New(time.Unix(0, 0)), nil)
	g.block("x", time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.wait(ctx); err == nil {
		t.Fatal("wait on a cancelled context returned nil")
	}
}

func TestMatch(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	skew := 2 * time.Minute
	job := Job{Name: "a.pdf", Size: 100}
	link := Job{Name: "site", Link: "https://example.com/"}
	att := func(id, name string, size int64, created time.Time) Attachment {
		return Attachment{ID: id, Name: name, Size: size, Created: created}
	}
	none := func(string) bool { return true }
	tests := []struct {
		name  string
		list  []Attachment
		job   Job
		claim func(string) bool
		want  string
	}{
		{"exact", []Attachment{att("1", "a.pdf", 100, start.Add(time.Second))}, job, none, "1"},
		{"created a second before start (server clock)", []Attachment{att("1", "a.pdf", 100, start.Add(-time.Second))}, job, none, "1"},
		{"too old", []Attachment{att("1", "a.pdf", 100, start.Add(-3*time.Minute))}, job, none, ""},
		{"other size", []Attachment{att("1", "a.pdf", 101, start)}, job, none, ""},
		{"other name", []Attachment{att("1", "b.pdf", 100, start)}, job, none, ""},
		{"already in ledger", []Attachment{att("1", "a.pdf", 100, start)}, job, func(id string) bool { return id != "1" }, ""},
		{"earliest unclaimed wins", []Attachment{att("2", "a.pdf", 100, start.Add(5*time.Second)), att("1", "a.pdf", 100, start.Add(time.Second))}, job, none, "1"},
		{"link", []Attachment{{ID: "9", Name: "site", Link: "https://example.com/", Created: start}}, link, none, "9"},
		{"other link", []Attachment{{ID: "9", Name: "site", Link: "https://example.org/", Created: start}}, link, none, ""},
		{"empty", nil, job, none, ""},
		{"earliest taken: next one", []Attachment{att("1", "a.pdf", 100, start), att("2", "a.pdf", 100, start.Add(time.Second))}, job, func(id string) bool { return id != "1" }, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, _ := match(tt.list, tt.job, start.Add(-skew), tt.claim)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("match = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
