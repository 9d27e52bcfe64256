package zohotest_test

import (
	"sync"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

func TestOnRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path string
		at           time.Time
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	s := zohotest.NewServer(t, zohotest.Options{
		Latency: 50 * time.Millisecond,
		OnRequest: func(method, path string, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, seen{method, path, at})
		},
	})
	c := newClient(t)
	before := time.Now()
	tok := mint(t, c, s)
	if r := uploadFile(t, c, s, tok, "a.pdf", []byte("a")); r.status != 200 {
		t.Fatalf("upload: HTTP %d", r.status)
	}
	answered := time.Now()

	mu.Lock()
	defer mu.Unlock()
	want := []seen{
		{method: "POST", path: "/oauth/v2/token"},
		{method: "POST", path: "/crm/v2/Leads/" + record + "/Attachments"},
	}
	if len(got) != len(want) {
		t.Fatalf("OnRequest called %d times (%v), want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].method != w.method || got[i].path != w.path {
			t.Errorf("call %d = %s %s, want %s %s", i, got[i].method, got[i].path, w.method, w.path)
		}
		if got[i].at.Before(before) || got[i].at.After(answered) {
			t.Errorf("call %d at %v, want between %v and %v", i, got[i].at, before, answered)
		}
	}
	// The upload is reported on arrival, before the fake's latency.
	if d := answered.Sub(got[1].at); d < 50*time.Millisecond {
		t.Errorf("upload reported %v before its answer, want at least the 50ms latency", d)
	}
}
