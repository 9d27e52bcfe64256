package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		ok         bool
	}{
		{"plain", "4242 (crmdrop) S 1 4242 4242 0 -1 4194560 1521 0 0 0 123 45 0 0 20 0 9 0 100 0 0", 168 * clockTick, true},
		{"name with spaces and parens", "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 10 * clockTick, true},
		{"no name", "4242 crmdrop S 1", 0, false},
		{"short", "4242 (crmdrop) S 1 2 3", 0, false},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", tt.stat, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tcrmdrop\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    4096 kB\nRssFile:\t    6144 kB\nThreads:\t7\nbogus line\n"
	got := parseStatus([]byte(status))
	want := memInfo{HWM: 20 << 20, RSS: 10 << 20, Anon: 4 << 20, File: 6 << 20, Threads: 7}
	if got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(3, 1, 2), 100, 3 * time.Millisecond},
		{"p99 of 3 is the max", ms(3, 1, 2), 99, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.ds, tt.p, got, tt.want)
			}
		})
	}
	if got := median(ms(4, 1, 3, 2)); got != 2*time.Millisecond {
		t.Errorf("median(4,1,3,2) = %v, want the lower middle 2ms", got)
	}
}

func TestBursts(t *testing.T) {
	at := func(cpu ...int) []sample {
		out := make([]sample, len(cpu))
		for i, c := range cpu {
			out[i] = sample{cpu: time.Duration(c) * clockTick}
		}
		return out
	}
	tests := []struct {
		name string
		ss   []sample
		want []time.Duration
	}{
		{"idle", at(5, 5, 5, 5), nil},
		{"one burst", at(0, 0, 3, 7, 9, 9, 9), []time.Duration{9 * clockTick}},
		{"one quiet sample inside a burst", at(0, 2, 2, 4, 4, 4, 4), []time.Duration{4 * clockTick}},
		{"two bursts", at(0, 1, 1, 1, 3, 3), []time.Duration{clockTick, 2 * clockTick}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bursts(tt.ss)
			if len(got) != len(tt.want) {
				t.Fatalf("bursts = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("bursts = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := selectScenarios("large, idle")
	if err != nil || len(got) != 2 || !got["large"] || !got["scale"] {
		t.Errorf(`selectScenarios("large, idle") = %v, %v; want large and scale`, got, err)
	}
	if got, _ := selectScenarios("all"); len(got) != len(allScenarios) {
		t.Errorf(`selectScenarios("all") = %v, want all %d`, got, len(allScenarios))
	}
	if _, err := selectScenarios("fast"); err == nil || !strings.Contains(err.Error(), "fast") {
		t.Errorf(`selectScenarios("fast") error = %v, want one naming it`, err)
	}
}

func TestScanTimesAndLogTimes(t *testing.T) {
	log := `time=2026-01-02T03:04:05.100Z level=DEBUG msg="scan done" root=/x files=3 folders=1 took=1.5ms
time=2026-01-02T03:04:05.200Z level=INFO msg="file queued" path=Leads/1/a.pdf
time=2026-01-02T03:04:06.300Z level=INFO msg="file queued" path="Leads/1 Acme/b.pdf"
time=2026-01-02T03:05:05.100Z level=DEBUG msg="scan done" root=/x files=3 folders=1 took=480ms
`
	path := t.TempDir() + "/daemon.log"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := scanTimes(path); len(got) != 2 || got[0] != 1500*time.Microsecond || got[1] != 480*time.Millisecond {
		t.Errorf("scanTimes = %v, want [1.5ms 480ms]", got)
	}
	q := logTimes(path, `msg="file queued"`)
	if len(q) != 2 || q[1].Sub(q[0]) != 1100*time.Millisecond {
		t.Errorf("logTimes = %v, want two times 1.1s apart", q)
	}
}

func TestIdeal(t *testing.T) {
	bt := batch{files: 1000, latency: 50 * time.Millisecond, settle: time.Second}
	if got, want := bt.ideal(8), 7250*time.Millisecond; got != want {
		t.Errorf("ideal(8) = %v, want %v", got, want)
	}
}
