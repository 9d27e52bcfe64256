package admin

import (
	"bufio"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// scrape returns the samples of GET /metrics as "name{labels}" -> "value".
func scrape(t *testing.T, reg *prometheus.Registry) map[string]string {
	t.Helper()
	src := &fakeSource{}
	rec := get(t, NewHandler(src, reg), "GET", "/metrics")
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics Content-Type = %q, want the text format", ct)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = line[i+1:]
	}
	return samples
}

func TestMetricsValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	var depth atomic.Int64
	depth.Store(7)
	m := NewMetrics(reg, func() float64 { return float64(depth.Load()) })

	m.Discovered.Add(5)
	m.Uploads.WithLabelValues(ResultUploaded).Add(3)
	m.Uploads.WithLabelValues(ResultAdopted).Inc()
	m.Bytes.Add(1024)
	m.Duration.Observe(0.07)
	m.Duration.Observe(42)
	m.InFlight.Set(2)
	m.Retries.WithLabelValues(ClassTransient).Add(4)
	m.Throttled.Inc()
	m.Blocked.Set(1)
	m.TokensMinted.Add(2)

	want := map[string]string{
		"crmdrop_files_discovered_total":                    "5",
		`crmdrop_uploads_total{result="uploaded"}`:          "3",
		`crmdrop_uploads_total{result="adopted"}`:           "1",
		`crmdrop_uploads_total{result="failed"}`:            "0",
		`crmdrop_uploads_total{result="changed"}`:           "0",
		"crmdrop_uploaded_bytes_total":                      "1024",
		`crmdrop_upload_duration_seconds_bucket{le="0.05"}`: "0",
		`crmdrop_upload_duration_seconds_bucket{le="0.1"}`:  "1",
		`crmdrop_upload_duration_seconds_bucket{le="30"}`:   "1",
		`crmdrop_upload_duration_seconds_bucket{le="60"}`:   "2",
		`crmdrop_upload_duration_seconds_bucket{le="600"}`:  "2",
		`crmdrop_upload_duration_seconds_bucket{le="+Inf"}`: "2",
		"crmdrop_upload_duration_seconds_sum":               "42.07",
		"crmdrop_upload_duration_seconds_count":             "2",
		"crmdrop_uploads_in_flight":                         "2",
		`crmdrop_upload_retries_total{class="transient"}`:   "4",
		`crmdrop_upload_retries_total{class="ambiguous"}`:   "0",
		"crmdrop_throttled_total":                           "1",
		"crmdrop_blocked":                                   "1",
		"crmdrop_tokens_minted_total":                       "2",
		"crmdrop_queue_depth":                               "7",
	}
	got := scrape(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if !strings.HasPrefix(k, "crmdrop_") {
			t.Errorf("metric %s is not named crmdrop_*", k)
		}
	}

	// The queue depth is read at scrape time, not at registration.
	depth.Store(11)
	m.Blocked.Set(0)
	got = scrape(t, reg)
	if got["crmdrop_queue_depth"] != "11" || got["crmdrop_blocked"] != "0" {
		t.Errorf("after change: queue_depth = %q, blocked = %q, want 11, 0", got["crmdrop_queue_depth"], got["crmdrop_blocked"])
	}
}

func TestMetricsNilArgs(t *testing.T) {
	m := NewMetrics(nil, nil) // registers nothing, still usable
	m.Discovered.Inc()
	m.Uploads.WithLabelValues(ResultFailed).Inc()

	reg := prometheus.NewRegistry()
	NewMetrics(reg, nil)
	if got := scrape(t, reg)["crmdrop_queue_depth"]; got != "0" {
		t.Errorf("crmdrop_queue_depth with nil func = %q, want 0", got)
	}
}

func TestMetricsConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, func() float64 { return 0 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.Uploads.WithLabelValues(ResultUploaded).Inc()
				m.InFlight.Inc()
				m.InFlight.Dec()
			}
		})
	}
	wg.Wait()
	got := scrape(t, reg)
	if v := got[`crmdrop_uploads_total{result="uploaded"}`]; v != "800" {
		t.Errorf(`crmdrop_uploads_total{result="uploaded"} = %q, want 800`, v)
	}
	if v := got["crmdrop_uploads_in_flight"]; v != "0" {
		t.Errorf("crmdrop_uploads_in_flight = %q, want 0", v)
	}
}

func TestMetricsDoubleRegisterPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg, nil)
	defer func() {
		if recover() == nil {
			t.Error("second NewMetrics on one registry did not panic")
		}
	}()
	NewMetrics(reg, nil)
}
