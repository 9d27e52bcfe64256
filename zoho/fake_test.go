package zoho

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Distinctive secrets, so a test can look for them in any text.
const (
	testClientID = "1000.TESTCLIENTID"
	testSecret   = "SECRET-c0ffee-client-secret"
	testRefresh  = "1000.REFRESH-deadbeef-refresh-token"
	testRecord   = "3477061000005177002"
)

func accessToken(n int) string { return fmt.Sprintf("1000.ACCESS-%d-7d1e9a", n) }

// fake is a minimal accounts server + CRM in one httptest server.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	mints     int // token requests received
	forms     []url.Values
	tokenResp func(n int) (status int, body string) // nil: a 1 h token "accessToken(n)"
	api       http.HandlerFunc

	tokenRetryAfter string
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/v2/token", f.token)
	mux.HandleFunc("/crm/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h := f.api
		f.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.mints++
	n := f.mints
	f.forms = append(f.forms, r.PostForm)
	resp, retryAfter := f.tokenResp, f.tokenRetryAfter
	f.mu.Unlock()
	status, body := http.StatusOK, fmt.Sprintf(`{"access_token":%q,"api_domain":%q,"token_type":"Bearer","expires_in":3600}`, accessToken(n), f.srv.URL)
	if resp != nil {
		status, body = resp(n)
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fake) setAPI(h http.HandlerFunc) {
	f.mu.Lock()
	f.api = h
	f.mu.Unlock()
}

func (f *fake) setToken(h func(n int) (int, string)) {
	f.mu.Lock()
	f.tokenResp = h
	f.mu.Unlock()
}

func (f *fake) mintCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mints
}

func (f *fake) options() Options {
	return Options{
		AccountsURL:  f.srv.URL,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RefreshToken: testRefresh,
	}
}

func mustNew(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Zoho-oauthtoken ")
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func successBody(id string) string {
	return fmt.Sprintf(`{"data":[{"code":"SUCCESS","details":{"Modified_Time":"2024-01-01T00:00:00+00:00","id":%q},"message":"attachment uploaded successfully","status":"success"}]}`, id)
}

// manualClock only moves when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock {
	return &manualClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openString(s string, opens *int, mu *sync.Mutex) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		mu.Lock()
		*opens++
		mu.Unlock()
		return io.NopCloser(strings.NewReader(s)), nil
	}
}
