package admin

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestWriteTextGolden(t *testing.T) {
	var failures []Failure
	for i := range 12 { // more than WriteText shows, out of order
		at := t0.Add(time.Duration((i*7)%12) * time.Minute)
		failures = append(failures, Failure{
			Path:  fmt.Sprintf("Leads/100000023100%d/file%02d.pdf", i%3, i),
			Error: fmt.Sprintf("Zoho CRM refused the file:\tINVALID_DATA (%d)\nsee the log", i),
			At:    at,
		})
	}
	cases := []struct {
		name string
		st   Status
	}{
		{"running", Status{
			State:  StateRunning,
			Counts: map[string]int{"pending": 3, "uploading": 2, "uploaded": 1204, "failed": 12},
			Queue:  3,
			InFlight: []InFlight{
				{Path: "Price_Books/3477061000005177002 Acme Ltd/scans/page1.jpg", Module: "Price_Books", RecordID: "3477061000005177002", Attempts: 4, Since: t0.Add(10 * time.Minute)},
				{Path: "Leads/1000000231009/contract.pdf", Module: "Leads", RecordID: "1000000231009", Attempts: 1, Since: t0.Add(9 * time.Minute)},
			},
			RecentFailures: failures,
			Inbox:          "/srv/crmdrop/inbox",
			Version:        "1.2.3",
			StartedAt:      t0,
			Source:         SourceDaemon,
		}},
		{"blocked from ledger", Status{
			State:         StateBlocked,
			BlockedReason: "Zoho refused the refresh token (invalid_code)\nrun `crmdrop auth`",
			Counts:        map[string]int{"pending": 7, "conflict": 1},
			Queue:         7,
			RecentFailures: []Failure{
				{Path: "Leads/1/setup.exe", Error: ".exe files are not uploaded", At: t0},
			},
			Source: SourceLedger,
		}},
		{"zero", Status{}},
	}
	var buf bytes.Buffer
	for _, c := range cases {
		fmt.Fprintf(&buf, "=== %s\n", c.name)
		if err := WriteText(&buf, c.st); err != nil {
			t.Fatalf("WriteText(%s): %v", c.name, err)
		}
	}
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("WriteText output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestWriteTextLimitsFailures(t *testing.T) {
	var st Status
	for i := range 15 {
		st.RecentFailures = append(st.RecentFailures, Failure{Path: fmt.Sprintf("f%02d", i), Error: "e", At: t0.Add(time.Duration(i) * time.Minute)})
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, st); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "recent failures (newest 10 of 15):") {
		t.Errorf("output lacks the limited header:\n%s", out)
	}
	// Newest first: f14 … f05 shown, f04 and older not.
	if i14, i05 := strings.Index(out, "f14"), strings.Index(out, "f05"); i14 < 0 || i05 < 0 || i14 > i05 {
		t.Errorf("want f14 before f05 in:\n%s", out)
	}
	if strings.Contains(out, "f04") {
		t.Errorf("f04 shown, want only the newest 10:\n%s", out)
	}
	// The caller's slice keeps its order.
	if st.RecentFailures[0].Path != "f00" {
		t.Errorf("WriteText reordered the caller's slice: first = %q", st.RecentFailures[0].Path)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextError(t *testing.T) {
	if err := WriteText(failWriter{}, runningStatus()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteText to a failing writer = %v, want the write error", err)
	}
}
