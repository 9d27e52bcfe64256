package zohotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

const record = "3477061000005177002"

// clock is a manual clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newClient returns a client with its own connections, closed at cleanup.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // nil when raw is empty
}

func (r response) code() string {
	s, _ := r.body["code"].(string)
	return s
}

func (r response) message() string {
	s, _ := r.body["message"].(string)
	return s
}

func do(c *http.Client, req *http.Request) (response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, err
		}
	}
	return r, nil
}

func mustDo(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	r, err := do(c, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

// tokenRequest posts form to the token endpoint and returns the JSON answer.
func tokenRequest(t *testing.T, c *http.Client, s *zohotest.Server, form url.Values) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/oauth/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := mustDo(t, c, req)
	if r.status != http.StatusOK {
		t.Fatalf("token endpoint: HTTP %d, want 200 (Zoho answers failures with 200 too)", r.status)
	}
	return r.body
}

func refreshForm() url.Values {
	return url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {"test-client-id"},
		"client_secret": {"test-client-secret"},
		"refresh_token": {"1000.test-refresh-token"},
	}
}

// mint returns a fresh access token from the default credentials.
func mint(t *testing.T, c *http.Client, s *zohotest.Server) string {
	t.Helper()
	body := tokenRequest(t, c, s, refreshForm())
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatalf("mint: no access_token in %v", body)
	}
	return tok
}

// multipartBody builds a multipart form in memory: fields in order, then an
// optional file part.
func multipartBody(t *testing.T, fields [][2]string, fileName string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if fileName != "" {
		part, err := mw.CreateFormFile("file", fileName)
		if err != nil {
			t.Fatal(err)
		}
		part.Write(content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func attachmentsURL(s *zohotest.Server, version, module, rec string) string {
	return s.URL() + "/crm/" + version + "/" + module + "/" + rec + "/Attachments"
}

// uploadRequest builds POST …/Attachments with body and the token.
func uploadRequest(t *testing.T, ctx context.Context, s *zohotest.Server, tok, version, module, rec string, body io.Reader, ctype string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, attachmentsURL(s, version, module, rec), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if tok != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
	}
	return req
}

// uploadFile uploads one file to Leads/record on v2 and returns the answer.
func uploadFile(t *testing.T, c *http.Client, s *zohotest.Server, tok, name string, content []byte) response {
	t.Helper()
	body, ctype := multipartBody(t, nil, name, content)
	return mustDo(t, c, uploadRequest(t, t.Context(), s, tok, "v2", "Leads", record, body, ctype))
}

// listRequest builds GET …/Attachments?query.
func listRequest(t *testing.T, s *zohotest.Server, tok, version, module, rec, query string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, attachmentsURL(s, version, module, rec)+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
	}
	return req
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantError checks an API error answer.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("got HTTP %d %q (%s), want HTTP %d %q", r.status, r.code(), r.raw, status, code)
	}
	if r.body["status"] != "error" {
		t.Errorf("error body status = %v, want \"error\"", r.body["status"])
	}
	if _, ok := r.body["details"].(map[string]any); !ok {
		t.Errorf("error body has no details object: %s", r.raw)
	}
}
