package zohotest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault      zohotest.Fault
		wantStored int
		wantStatus int    // 0: the request fails without an answer
		wantCode   string // for an answer
		wantTimout bool   // for no answer: the client gave up, rather than the connection broke
	}{
		{fault: zohotest.Fault500Before, wantStored: 0, wantStatus: 500, wantCode: "INTERNAL_ERROR"},
		{fault: zohotest.Fault500After, wantStored: 1, wantStatus: 500, wantCode: "INTERNAL_ERROR"},
		{fault: zohotest.Fault429, wantStored: 0, wantStatus: 429, wantCode: "TOO_MANY_REQUESTS"},
		{fault: zohotest.FaultReset, wantStored: 0},
		{fault: zohotest.FaultResetAfter, wantStored: 1},
		{fault: zohotest.FaultTimeout, wantStored: 1, wantTimout: true},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			s := zohotest.NewServer(t, zohotest.Options{})
			c := newClient(t)
			tok := mint(t, c, s)
			s.FailNext(1, tt.fault)

			ctx := t.Context()
			if tt.wantTimout {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			// Large enough that FaultReset cuts the body short.
			body, ctype := multipartBody(t, nil, "scan.pdf", bytes.Repeat([]byte("s"), 256<<10))
			r, err := do(c, uploadRequest(t, ctx, s, tok, "v2", "Leads", record, body, ctype))
			switch {
			case tt.wantStatus != 0:
				if err != nil {
					t.Fatalf("upload: %v, want HTTP %d", err, tt.wantStatus)
				}
				wantError(t, r, tt.wantStatus, tt.wantCode)
			case tt.wantTimout:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("upload: %v (HTTP %d), want the client's deadline to expire", err, r.status)
				}
			default:
				if err == nil || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("upload: err %v (HTTP %d), want a broken connection", err, r.status)
				}
			}
			if got := len(s.Uploads()); got != tt.wantStored {
				t.Errorf("stored %d attachments, want %d", got, tt.wantStored)
			}
			if got := s.Requests().Faults; got != 1 {
				t.Errorf("Requests().Faults = %d, want 1", got)
			}

			// The fault was for one upload only.
			waitFor(t, "the faulted upload to end", func() bool { return s.InFlight() == 0 })
			if r := uploadFile(t, c, s, tok, "next.pdf", []byte("next")); r.status != http.StatusOK {
				t.Fatalf("upload after the fault: HTTP %d %s, want 200", r.status, r.raw)
			}
		})
	}
}

func TestFailNextQueues(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	s.FailNext(2, zohotest.Fault500Before)
	s.FailNext(1, zohotest.Fault429)
	var got []int
	for range 4 {
		got = append(got, uploadFile(t, c, s, tok, "a.pdf", []byte("a")).status)
	}
	if want := []int{500, 500, 429, 200}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	for _, tt := range []struct {
		set  time.Duration
		want string
	}{
		{-1, "1"}, // the default
		{0, "1"},
		{300 * time.Millisecond, "1"},
		{1500 * time.Millisecond, "2"},
		{3 * time.Second, "3"},
	} {
		if tt.set >= 0 {
			s.SetRetryAfter(tt.set)
		}
		s.FailNext(1, zohotest.Fault429)
		r := uploadFile(t, c, s, tok, "a.pdf", []byte("a"))
		if got := r.header.Get("Retry-After"); r.status != 429 || got != tt.want {
			t.Errorf("SetRetryAfter(%v): HTTP %d, Retry-After %q; want 429, %q", tt.set, r.status, got, tt.want)
		}
	}
}

func TestFaultRates(t *testing.T) {
	t.Parallel()
	run := func(seed int64) ([]int, *zohotest.Server) {
		s := zohotest.NewServer(t, zohotest.Options{})
		c := newClient(t)
		tok := mint(t, c, s)
		s.SetFaultRates(zohotest.FaultRates{Before500: 0.3, After500: 0.1, TooMany: 0.2}, seed)
		var statuses []int
		for range 40 {
			statuses = append(statuses, uploadFile(t, c, s, tok, "a.pdf", []byte("a")).status)
		}
		return statuses, s
	}
	first, s := run(42)
	again, _ := run(42)
	if !slices.Equal(first, again) {
		t.Errorf("same seed, different faults:\n%v\n%v", first, again)
	}
	n := map[int]int{}
	for _, st := range first {
		n[st]++
	}
	if n[200] == 0 || n[500] == 0 || n[429] == 0 || n[200]+n[500]+n[429] != 40 {
		t.Errorf("statuses %v: want a mix of 200, 500 and 429 only", n)
	}
	// Stored: every success and every 500-after.
	if got, faults := len(s.Uploads()), s.Requests().Faults; got < n[200] || got > n[200]+n[500] || faults != n[500]+n[429] {
		t.Errorf("stored %d, faults %d; with statuses %v", got, faults, n)
	}

	s.SetFaultRates(zohotest.FaultRates{}, 0)
	c := newClient(t)
	tok := mint(t, c, s)
	for range 10 {
		if r := uploadFile(t, c, s, tok, "a.pdf", []byte("a")); r.status != 200 {
			t.Fatalf("with zero rates: HTTP %d, want 200", r.status)
		}
	}
}

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{MaxConcurrent: 1})
	c := newClient(t)
	tok := mint(t, c, s)
	s.FailNext(1, zohotest.FaultTimeout) // holds the only slot

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hung := make(chan error, 1)
	go func() {
		body, ctype := multipartBody(t, nil, "slow.pdf", []byte("slow"))
		_, err := do(c, uploadRequest(t, ctx, s, tok, "v2", "Leads", record, body, ctype))
		hung <- err
	}()
	waitFor(t, "the first upload to be stored", func() bool { return len(s.Uploads()) == 1 })

	r := uploadFile(t, c, s, tok, "b.pdf", []byte("b"))
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	if got := len(s.Uploads()); got != 1 {
		t.Errorf("stored %d, want 1 (the refused upload is not stored)", got)
	}

	cancel()
	if err := <-hung; err == nil {
		t.Errorf("hung upload answered after its client gave up")
	}
	waitFor(t, "the slot to free", func() bool { return s.InFlight() == 0 })
	if r := uploadFile(t, c, s, tok, "c.pdf", []byte("c")); r.status != http.StatusOK {
		t.Fatalf("upload once the slot is free: HTTP %d %s, want 200", r.status, r.raw)
	}
	if got := s.Requests(); got.Rejected != 1 || got.Faults != 1 {
		t.Errorf("Requests() = %+v, want 1 rejected, 1 fault", got)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{Latency: 150 * time.Millisecond})
	c := newClient(t)
	tok := mint(t, c, s)

	start := time.Now()
	if r := uploadFile(t, c, s, tok, "a.pdf", []byte("a")); r.status != 200 {
		t.Fatalf("upload: HTTP %d", r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("upload answered in %v, want at least the 150ms latency", d)
	}

	// A client that gives up during the latency leaves the upload stored:
	// the ambiguous case.
	s.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	body, ctype := multipartBody(t, nil, "b.pdf", []byte("b"))
	if _, err := do(c, uploadRequest(t, ctx, s, tok, "v2", "Leads", record, body, ctype)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("upload with a minute of latency: %v, want the client's deadline", err)
	}
	if got := len(s.Uploads()); got != 2 {
		t.Errorf("stored %d, want 2", got)
	}
}

func TestCloseEndsHangingUploads(t *testing.T) {
	t.Parallel()
	s, err := zohotest.New(zohotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	tok := mint(t, c, s)
	s.FailNext(1, zohotest.FaultTimeout)
	hung := make(chan error, 1)
	go func() {
		body, ctype := multipartBody(t, nil, "a.pdf", []byte("a"))
		r, err := do(c, uploadRequest(t, t.Context(), s, tok, "v2", "Leads", record, body, ctype))
		if err == nil {
			hung <- fmt.Errorf("HTTP %d %s", r.status, r.raw)
			return
		}
		hung <- nil
	}()
	waitFor(t, "the upload to be stored", func() bool { return len(s.Uploads()) == 1 })
	s.Close()
	if err := <-hung; err != nil {
		t.Errorf("hung upload answered %v, want a broken connection", err)
	}
	s.Close() // twice is fine
}
