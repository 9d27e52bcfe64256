package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeSource returns a fixed Status or error; set may change them between requests.
type fakeSource struct {
	mu  sync.Mutex
	st  Status
	err error
}

func (f *fakeSource) Status(ctx context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.err
}

func (f *fakeSource) set(st Status, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.err = st, err
}

var t0 = time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)

func runningStatus() Status {
	return Status{
		State:  StateRunning,
		Counts: map[string]int{"pending": 2, "uploaded": 40},
		Queue:  2,
		InFlight: []InFlight{{
			Path: "Leads/1000000231009/contract.pdf", Module: "Leads", RecordID: "1000000231009",
			Attempts: 2, Since: t0,
		}},
		RecentFailures: []Failure{{Path: "Leads/1/setup.exe", Error: ".exe files are not uploaded", At: t0.Add(-time.Hour)}},
	}
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, path, nil))
	return rec
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		st       Status
		err      error
		wantCode int
		wantBody string
	}{
		{"running", runningStatus(), nil, 200, "ok\n"},
		{"blocked", Status{State: StateBlocked, BlockedReason: "zoho: OAUTH_SCOPE_MISMATCH (HTTP 401): invalid oauth scope"}, nil,
			503, "blocked: zoho: OAUTH_SCOPE_MISMATCH (HTTP 401): invalid oauth scope\n"},
		{"blocked multi-line reason", Status{State: StateBlocked, BlockedReason: "inbox missing\nmount the share"}, nil,
			503, "blocked: inbox missing mount the share\n"},
		{"blocked no reason", Status{State: StateBlocked}, nil, 503, "blocked\n"},
		{"other state", Status{State: "starting"}, nil, 503, "starting\n"},
		{"zero status", Status{}, nil, 503, "not running\n"},
		{"source error", Status{}, errors.New("ledger: timeout"), 500, "status unavailable: ledger: timeout\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{}
			src.set(tt.st, tt.err)
			rec := get(t, NewHandler(src, nil), "GET", "/healthz")
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
}

// jsonKeys returns the sorted keys of a JSON object.
func jsonKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return slices.Sorted(maps.Keys(m))
}

func TestAPIStatus(t *testing.T) {
	specKeys := []string{"blocked_reason", "counts", "in_flight", "queue", "recent_failures", "state"}
	blocked := Status{State: StateBlocked, BlockedReason: "refresh token rejected (invalid_code)"}
	full := runningStatus()
	full.Inbox, full.Version, full.StartedAt, full.Source = "/srv/inbox", "1.2.3", t0, SourceDaemon

	tests := []struct {
		name       string
		st         Status
		wantKeys   []string
		wantState  string
		wantReason string
		wantCounts map[string]int
		wantFlight int
		wantFails  int
	}{
		{"running", runningStatus(), specKeys, "running", "",
			map[string]int{"pending": 2, "uploading": 0, "uploaded": 40, "failed": 0}, 1, 1},
		{"blocked, nothing in flight", blocked, specKeys, "blocked", "refresh token rejected (invalid_code)",
			map[string]int{"pending": 0, "uploading": 0, "uploaded": 0, "failed": 0}, 0, 0},
		{"optional fields", full, append(slices.Clone(specKeys), "inbox", "source", "started_at", "version"), "running", "",
			map[string]int{"pending": 2, "uploading": 0, "uploaded": 40, "failed": 0}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{}
			src.set(tt.st, nil)
			rec := get(t, NewHandler(src, nil), "GET", "/api/status")
			if rec.Code != 200 {
				t.Fatalf("GET /api/status = %d %q, want 200", rec.Code, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			raw := rec.Body.Bytes()
			slices.Sort(tt.wantKeys)
			if got := jsonKeys(t, raw); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("keys = %q, want %q", got, tt.wantKeys)
			}
			var m map[string]json.RawMessage
			json.Unmarshal(raw, &m)
			for _, k := range []string{"in_flight", "recent_failures"} {
				if s := string(m[k]); !strings.HasPrefix(s, "[") {
					t.Errorf("%s = %s, want a JSON array", k, s)
				}
			}
			var got struct {
				State          string            `json:"state"`
				BlockedReason  string            `json:"blocked_reason"`
				Counts         map[string]int    `json:"counts"`
				InFlight       []json.RawMessage `json:"in_flight"`
				RecentFailures []json.RawMessage `json:"recent_failures"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.State != tt.wantState || got.BlockedReason != tt.wantReason {
				t.Errorf("state, reason = %q, %q, want %q, %q", got.State, got.BlockedReason, tt.wantState, tt.wantReason)
			}
			if !maps.Equal(got.Counts, tt.wantCounts) {
				t.Errorf("counts = %v, want %v", got.Counts, tt.wantCounts)
			}
			if len(got.InFlight) != tt.wantFlight || len(got.RecentFailures) != tt.wantFails {
				t.Errorf("len(in_flight), len(recent_failures) = %d, %d, want %d, %d",
					len(got.InFlight), len(got.RecentFailures), tt.wantFlight, tt.wantFails)
			}
			for _, f := range got.InFlight {
				if k, want := jsonKeys(t, f), []string{"attempts", "module", "path", "record_id", "since"}; !slices.Equal(k, want) {
					t.Errorf("in_flight keys = %q, want %q", k, want)
				}
			}
			for _, f := range got.RecentFailures {
				if k, want := jsonKeys(t, f), []string{"at", "error", "path"}; !slices.Equal(k, want) {
					t.Errorf("recent_failures keys = %q, want %q", k, want)
				}
			}
			// The daemon's own map must not grow the zero counts the JSON shows.
			if _, ok := tt.st.Counts["failed"]; ok {
				t.Errorf("handler wrote into the Source's Counts map: %v", tt.st.Counts)
			}
		})
	}
}

func TestAPIStatusRoundTrip(t *testing.T) {
	want := runningStatus()
	want.Inbox, want.Version, want.StartedAt = "/srv/inbox", "1.2.3", t0
	src := &fakeSource{}
	src.set(want, nil)
	rec := get(t, NewHandler(src, nil), "GET", "/api/status")
	var got Status
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want = want.normalized()
	if !statusEqual(got, want) {
		t.Errorf("decoded /api/status = %+v, want %+v", got, want)
	}
}

func statusEqual(a, b Status) bool {
	return a.State == b.State && a.BlockedReason == b.BlockedReason && maps.Equal(a.Counts, b.Counts) &&
		a.Queue == b.Queue && slices.EqualFunc(a.InFlight, b.InFlight, func(x, y InFlight) bool {
		return x.Path == y.Path && x.Module == y.Module && x.RecordID == y.RecordID && x.Attempts == y.Attempts && x.Since.Equal(y.Since)
	}) && slices.EqualFunc(a.RecentFailures, b.RecentFailures, func(x, y Failure) bool {
		return x.Path == y.Path && x.Error == y.Error && x.At.Equal(y.At)
	}) && a.Inbox == b.Inbox && a.Version == b.Version && a.StartedAt.Equal(b.StartedAt) && a.Source == b.Source
}

func TestAPIStatusError(t *testing.T) {
	src := &fakeSource{}
	src.set(Status{}, errors.New("ledger: timeout"))
	rec := get(t, NewHandler(src, nil), "GET", "/api/status")
	if rec.Code != 500 || rec.Body.String() != "status unavailable: ledger: timeout\n" {
		t.Errorf("GET /api/status = %d %q, want 500 with the error", rec.Code, rec.Body.String())
	}
}

func TestMarshalNilStatus(t *testing.T) {
	b, err := json.Marshal(Status{State: StateRunning})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"state":"running","blocked_reason":"","counts":{"failed":0,"pending":0,"uploaded":0,"uploading":0},"queue":0,"in_flight":[],"recent_failures":[]}`
	if string(b) != want {
		t.Errorf("json.Marshal(Status{}) = %s\nwant %s", b, want)
	}
	// A pointer marshals the same way.
	if b2, _ := json.Marshal(&Status{State: StateRunning}); string(b2) != want {
		t.Errorf("json.Marshal(&Status{}) = %s, want %s", b2, want)
	}
}

func TestRouting(t *testing.T) {
	src := &fakeSource{}
	src.set(runningStatus(), nil)
	h := NewHandler(src, prometheus.NewRegistry())
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/api/status", 200},
		{"GET", "/metrics", 200},
		{"GET", "/", 404},
		{"GET", "/nope", 404},
		{"GET", "/healthz/", 404},
		{"GET", "/api/status/x", 404},
		{"GET", "/debug/pprof/", 404},
		{"POST", "/nope", 404},
		{"POST", "/healthz", 405},
		{"PUT", "/api/status", 405},
		{"DELETE", "/metrics", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := get(t, h, tt.method, tt.path)
			if rec.Code != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if rec.Code == 405 && !strings.Contains(rec.Header().Get("Allow"), "GET") {
				t.Errorf("405 Allow = %q, want GET listed", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestHandlerConcurrent(t *testing.T) {
	src := &fakeSource{}
	src.set(runningStatus(), nil)
	h := NewHandler(src, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/status", nil))
				if rec.Code != 200 {
					t.Errorf("GET /api/status = %d", rec.Code)
				}
				io.Copy(io.Discard, rec.Body)
			}
		})
	}
	wg.Wait()
}

// healthSource counts Status calls: /healthz must not build a whole Status when the
// Source can say its health directly.
type healthSource struct {
	statusCalls int
	state       string
}

func (h *healthSource) Status(context.Context) (Status, error) {
	h.statusCalls++
	return Status{State: h.state}, nil
}
func (h *healthSource) Health() (string, string) { return h.state, "NO_PERMISSION" }

func TestHealthzUsesHealther(t *testing.T) {
	src := &healthSource{state: StateBlocked}
	srv := httptest.NewServer(NewHandler(src, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "blocked: NO_PERMISSION\n" {
		t.Errorf("/healthz = %d %q, want 503 blocked: NO_PERMISSION", resp.StatusCode, body)
	}
	if src.statusCalls != 0 {
		t.Errorf("/healthz called Status %d times, want 0", src.statusCalls)
	}
}
