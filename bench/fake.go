package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"crmdrop/zoho/zohotest"
)

// recorder keeps what the fake saw, with times taken on the bench's clock: when each
// upload request arrived (headers read, body not yet) and when each attachment was
// stored (body received; the fake's latency comes after).
type recorder struct {
	mu      sync.Mutex
	arrived map[string][]time.Time // upload path (/crm/v2/Leads/123/Attachments) -> arrivals
	stored  []stored
	wake    chan struct{} // capacity 1: something was recorded
}

type stored struct {
	at time.Time
	a  zohotest.Attachment
}

// fakeRun is a fake Zoho on loopback with its recorder.
type fakeRun struct {
	srv *zohotest.Server
	rec *recorder
}

// startFake starts a fake Zoho whose uploads take latency and are recorded. The token
// mint limit is off: a benchmark starts daemons more often than Zoho allows minting.
func startFake(latency time.Duration) (*fakeRun, error) {
	r := &recorder{arrived: map[string][]time.Time{}, wake: make(chan struct{}, 1)}
	srv, err := zohotest.New(zohotest.Options{Latency: latency, MintLimit: -1, OnRequest: r.onRequest})
	if err != nil {
		return nil, err
	}
	srv.OnUpload(r.onUpload)
	return &fakeRun{srv: srv, rec: r}, nil
}

func (f *fakeRun) close() { f.srv.Close() }

func (r *recorder) onRequest(method, path string, at time.Time) {
	if method != http.MethodPost || !strings.HasSuffix(path, "/Attachments") {
		return
	}
	r.mu.Lock()
	r.arrived[path] = append(r.arrived[path], at)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) onUpload(a zohotest.Attachment) {
	now := time.Now()
	r.mu.Lock()
	r.stored = append(r.stored, stored{at: now, a: a})
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// storedCopy returns what was stored so far, in order.
func (r *recorder) storedCopy() []stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stored(nil), r.stored...)
}

// allArrivals returns the arrival times of every upload request, in order.
func (r *recorder) allArrivals() []time.Time {
	r.mu.Lock()
	var out []time.Time
	for _, a := range r.arrived {
		out = append(out, a...)
	}
	r.mu.Unlock()
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// arrivals returns the arrival times of uploads to path.
func (r *recorder) arrivals(path string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.arrived[path]...)
}

// waitFor waits until cond (called with r.mu held) holds; alive reports a reason to
// stop waiting early (the daemon died).
func (r *recorder) waitFor(what string, timeout time.Duration, alive func() error, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond) // to notice a dead daemon
	defer tick.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-r.wake:
		case <-tick.C:
			if alive != nil {
				if err := alive(); err != nil {
					return err
				}
			}
		case <-deadline.C:
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// waitStored waits until n attachments are stored.
func (r *recorder) waitStored(n int, timeout time.Duration, alive func() error) error {
	return r.waitFor(fmt.Sprintf("%d uploads", n), timeout, alive, func() bool { return len(r.stored) >= n })
}

// waitArrival waits for the first upload request to path and returns its arrival.
func (r *recorder) waitArrival(path string, timeout time.Duration, alive func() error) (time.Time, error) {
	var at time.Time
	err := r.waitFor("an upload to "+path, timeout, alive, func() bool {
		if a := r.arrived[path]; len(a) > 0 {
			at = a[0]
			return true
		}
		return false
	})
	return at, err
}

// checkOnce verifies that the fake holds exactly the files in want (record/name), once each.
func checkOnce(got []stored, want map[string]bool) error {
	seen := map[string]int{}
	for _, s := range got {
		seen[s.a.RecordID+"/"+s.a.FileName]++
	}
	for k, n := range seen {
		if !want[k] {
			return fmt.Errorf("unexpected upload %s", k)
		}
		if n > 1 {
			return fmt.Errorf("%s uploaded %d times", k, n)
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("%d of %d files uploaded", len(seen), len(want))
	}
	return nil
}

// mintToken gets an access token from the fake, as the naive script does with curl.
func mintToken(fake *zohotest.Server) (string, error) {
	resp, err := http.PostForm(fake.URL()+"/oauth/v2/token", url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {zohotest.DefaultClientID},
		"client_secret": {zohotest.DefaultClientSecret},
		"refresh_token": {zohotest.DefaultRefreshToken},
	})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.AccessToken == "" {
		return "", fmt.Errorf("no access token from the fake (%v)", err)
	}
	return b.AccessToken, nil
}

// record is one record folder of the bench's inbox.
type record struct {
	Rel, Module, ID string // "Leads/3477061000000100000 Acme Ltd", "Leads", "3477061000000100000"
}

// uploadPath is the API path uploads to the record go to.
func (r record) uploadPath() string { return "/crm/v2/" + r.Module + "/" + r.ID + "/Attachments" }

// records names n record folders spread over four modules, every other one with a
// label after its id, as staff name them.
func records(n int) []record {
	modules := []string{"Leads", "Contacts", "Deals", "Accounts"}
	out := make([]record, n)
	for i := range out {
		m := modules[i%len(modules)]
		id := fmt.Sprint(3477061000000100000 + i)
		dir := id
		if i%2 == 1 {
			dir += " Acme Ltd"
		}
		out[i] = record{Rel: m + "/" + dir, Module: m, ID: id}
	}
	return out
}

// makeRecords creates the record folders under inbox.
func makeRecords(inbox string, recs []record) error {
	for _, r := range recs {
		if err := os.MkdirAll(filepath.Join(inbox, filepath.FromSlash(r.Rel)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// content returns size bytes that differ for every n: random, with n in front.
func content(size, n int) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	if size >= 8 {
		binary.LittleEndian.PutUint64(b, uint64(n))
	}
	return b
}
