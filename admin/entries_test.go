package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeLister is a fakeSource that also lists entries and remembers what it was asked.
type fakeLister struct {
	fakeSource
	mu      sync.Mutex
	entries []Entry
	err     error
	asked   []string // "state/limit"
}

func (f *fakeLister) Entries(ctx context.Context, state string, limit int) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, state+"/"+strconv.Itoa(limit))
	if f.err != nil {
		return nil, f.err
	}
	var out []Entry
	for _, e := range f.entries {
		if state == "" || e.State == state {
			out = append(out, e)
		}
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func sampleEntries() []Entry {
	return []Entry{
		{Path: "Leads/1/a.pdf", Module: "Leads", RecordID: "1", State: "uploaded", Size: 10, ModTime: t0, Attempts: 1, AttachmentID: "3477061000010000001", MovedTo: "_uploaded/Leads/1/a.pdf", Updated: t0},
		{Path: "Leads/1/setup.exe", Module: "Leads", RecordID: "1", State: "failed", Size: 20, ModTime: t0, LastError: "no programs", Updated: t0},
		{Path: "Leads/2/b.pdf", Module: "Leads", RecordID: "2", State: "pending", Size: 30, ModTime: t0, Updated: t0},
	}
}

func TestAPIEntries(t *testing.T) {
	src := &fakeLister{entries: sampleEntries()}
	src.set(runningStatus(), nil)
	h := NewHandler(src, nil)
	tests := []struct {
		query     string
		wantCode  int
		wantPaths []string
		wantAsked string
		wantBody  string // substring, for errors
	}{
		{"", 200, []string{"Leads/1/a.pdf", "Leads/1/setup.exe", "Leads/2/b.pdf"}, "/0", ""},
		{"?state=failed", 200, []string{"Leads/1/setup.exe"}, "failed/0", ""},
		{"?state=uploading", 200, []string{}, "uploading/0", ""},
		{"?limit=2", 200, []string{"Leads/1/a.pdf", "Leads/1/setup.exe"}, "/2", ""},
		{"?state=done", 400, nil, "", `unknown state "done": use pending, uploading, uploaded, failed`},
		{"?limit=-1", 400, nil, "", "limit must be a whole number"},
		{"?limit=x", 400, nil, "", "limit must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			src.mu.Lock()
			src.asked = nil
			src.mu.Unlock()
			rec := get(t, h, "GET", "/api/entries"+tt.query)
			if rec.Code != tt.wantCode {
				t.Fatalf("GET /api/entries%s = %d %q, want %d", tt.query, rec.Code, rec.Body, tt.wantCode)
			}
			if tt.wantCode != 200 {
				if !strings.Contains(rec.Body.String(), tt.wantBody) {
					t.Errorf("body = %q, want it to contain %q", rec.Body, tt.wantBody)
				}
				if len(src.asked) != 0 {
					t.Errorf("the Lister was asked %v for a bad query", src.asked)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if strings.TrimSpace(rec.Body.String()) == "null" {
				t.Fatal("body is null, want an array")
			}
			var got []Entry
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, e := range got {
				paths = append(paths, e.Path)
			}
			if !slices.Equal(paths, tt.wantPaths) && !(len(paths) == 0 && len(tt.wantPaths) == 0) {
				t.Errorf("paths = %q, want %q", paths, tt.wantPaths)
			}
			if len(src.asked) != 1 || src.asked[0] != tt.wantAsked {
				t.Errorf("Lister asked %q, want [%q]", src.asked, tt.wantAsked)
			}
		})
	}

	src.err = errors.New("ledger: closed")
	if rec := get(t, h, "GET", "/api/entries"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "ledger: closed") {
		t.Errorf("GET /api/entries with a failing Lister = %d %q, want 500 with the error", rec.Code, rec.Body)
	}
}

func TestAPIEntriesOnlyForListers(t *testing.T) {
	src := &fakeSource{}
	src.set(runningStatus(), nil)
	if rec := get(t, NewHandler(src, nil), "GET", "/api/entries"); rec.Code != 404 {
		t.Errorf("GET /api/entries on a Source without Entries = %d, want 404", rec.Code)
	}
	l := &fakeLister{}
	l.set(runningStatus(), nil)
	if rec := get(t, NewHandler(l, nil), "POST", "/api/entries"); rec.Code != 405 {
		t.Errorf("POST /api/entries = %d, want 405", rec.Code)
	}
}

func TestFetchEntries(t *testing.T) {
	l := &fakeLister{entries: sampleEntries()}
	l.set(runningStatus(), nil)
	addr, _, _ := start(t, NewHandler(l, nil), shutdownGrace)

	got, err := FetchEntries(t.Context(), addr, "", 0)
	if err != nil {
		t.Fatalf("FetchEntries: %v", err)
	}
	want := sampleEntries()
	if len(got) != len(want) {
		t.Fatalf("FetchEntries = %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Path != w.Path || g.State != w.State || g.AttachmentID != w.AttachmentID || g.MovedTo != w.MovedTo ||
			g.LastError != w.LastError || g.Size != w.Size || !g.ModTime.Equal(w.ModTime) || !g.Updated.Equal(w.Updated) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	got, err = FetchEntries(t.Context(), addr, "pending", 1)
	if err != nil || len(got) != 1 || got[0].Path != "Leads/2/b.pdf" {
		t.Errorf("FetchEntries(pending, 1) = %+v, %v", got, err)
	}
	if got, err := FetchEntries(t.Context(), addr, "uploading", 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("FetchEntries(uploading) = %#v, %v, want an empty non-nil slice", got, err)
	}
	if _, err := FetchEntries(t.Context(), addr, "bogus", 0); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("FetchEntries(bogus) = %v, want the daemon's 400", err)
	}

	// A daemon whose Source cannot list.
	src := &fakeSource{}
	src.set(runningStatus(), nil)
	old, _, _ := start(t, NewHandler(src, nil), shutdownGrace)
	if _, err := FetchEntries(t.Context(), old, "", 0); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "does not serve /api/entries") {
		t.Errorf("FetchEntries from a daemon without /api/entries = %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, a := range []string{dead, ""} {
		if _, err := FetchEntries(t.Context(), a, "", 0); !errors.Is(err, ErrUnreachable) {
			t.Errorf("FetchEntries(%q) = %v, want ErrUnreachable", a, err)
		}
	}
}

func TestValidState(t *testing.T) {
	for _, s := range []string{"", "pending", "uploading", "uploaded", "failed"} {
		if !ValidState(s) {
			t.Errorf("ValidState(%q) = false", s)
		}
	}
	for _, s := range []string{"Failed", "done", " pending", "stopped"} {
		if ValidState(s) {
			t.Errorf("ValidState(%q) = true", s)
		}
	}
}
