package zoho

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	api := func(status int, code string) error { return &APIError{Status: status, Code: code, Message: "m"} }
	tests := []struct {
		name      string
		err       error
		wantClass Class
		wantHint  time.Duration
	}{
		// SPEC §2, per-file permanent.
		{"INVALID_DATA", api(400, "INVALID_DATA"), Permanent, 0},
		{"FILE_SIZE_MORE_THAN_ALLOWED_SIZE", api(400, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE"), Permanent, 0},
		{"INVALID_MODULE", api(400, "INVALID_MODULE"), Permanent, 0},
		{"INVALID_URL_PATTERN", api(404, "INVALID_URL_PATTERN"), Permanent, 0},
		// Global.
		{"OAUTH_SCOPE_MISMATCH", api(401, "OAUTH_SCOPE_MISMATCH"), Global, 0},
		{"NO_PERMISSION", api(403, "NO_PERMISSION"), Global, 0},
		{"AUTHORIZATION_FAILED", api(403, "AUTHORIZATION_FAILED"), Global, 0},
		{"invalid_code", &TokenError{Code: "invalid_code"}, Global, 0},
		{"invalid_client", &TokenError{Code: "invalid_client"}, Global, 0},
		{"Access Denied", &TokenError{Code: "Access Denied", RetryAfter: 10 * time.Minute}, Global, 10 * time.Minute},
		{"Access Denied without hint", &TokenError{Code: "Access Denied"}, Global, 10 * time.Minute},
		{"unknown token error", &TokenError{Code: "invalid_redirect_uri"}, Global, 0},
		// Transient.
		{"INVALID_TOKEN after retry", api(401, "INVALID_TOKEN"), Global, 0},
		{"AUTHENTICATION_FAILURE after retry", api(401, "AUTHENTICATION_FAILURE"), Global, 0},
		{"TOO_MANY_REQUESTS", &APIError{Status: 429, Code: "TOO_MANY_REQUESTS", RetryAfter: 42 * time.Second}, Transient, 42 * time.Second},
		{"429 without Retry-After still throttles", &APIError{Status: 429, Code: "TOO_MANY_REQUESTS"}, Transient, time.Second},
		{"429 other code", &APIError{Status: 429, Code: "LIMIT_REACHED", RetryAfter: time.Second}, Transient, time.Second},
		{"accounts 500", &APIError{Status: 500, Code: "HTTP_500", auth: true}, Transient, 0},
		{"accounts 400", &APIError{Status: 400, Code: "HTTP_400", auth: true}, Transient, 0},
		{"408", api(408, "HTTP_408"), Transient, 0},
		{"net not sent", &NetError{Op: "upload", Err: errors.New("connection refused")}, Transient, 0},
		{"deadline not sent", &NetError{Op: "upload", Err: context.DeadlineExceeded}, Transient, 0},
		{"cancelled", context.Canceled, Transient, 0},
		{"cancelled after send", &NetError{Op: "upload", Sent: true, Err: context.Canceled}, Transient, 0},
		{"bare deadline", context.DeadlineExceeded, Transient, 0},
		{"unknown error", errors.New("disk on fire"), Transient, 0},
		{"unknown 3xx", api(302, "HTTP_302"), Global, 0},
		{"nil", nil, Transient, 0},
		// Ambiguous.
		{"INTERNAL_ERROR", api(500, "INTERNAL_ERROR"), Ambiguous, 0},
		{"INTERNAL_ERROR in a 200", api(200, "INTERNAL_ERROR"), Ambiguous, 0},
		{"503", &APIError{Status: 503, Code: "HTTP_503", RetryAfter: 3 * time.Second}, Ambiguous, 3 * time.Second},
		{"net sent", &NetError{Op: "upload", Sent: true, Err: errors.New("connection reset by peer")}, Ambiguous, 0},
		{"deadline sent", &NetError{Op: "upload", Sent: true, Err: context.DeadlineExceeded}, Ambiguous, 0},
		{"unreadable 2xx", api(200, "INVALID_RESPONSE"), Ambiguous, 0},
		// Unknown 4xx.
		{"unknown 4xx", api(400, "SOMETHING_NEW"), Permanent, 0},
		{"unknown 401", api(401, "SOMETHING_NEW"), Global, 0},
		{"unknown 403", api(403, "SOMETHING_NEW"), Global, 0},
		// Wrapped.
		{"wrapped", fmt.Errorf("upload Leads/1/a.pdf: %w", api(400, "INVALID_DATA")), Permanent, 0},
		{"local permanent", &localError{class: Permanent, msg: "bad"}, Permanent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, hint := Classify(tt.err)
			if class != tt.wantClass || hint != tt.wantHint {
				t.Errorf("Classify(%v) = %v, %v, want %v, %v", tt.err, class, hint, tt.wantClass, tt.wantHint)
			}
		})
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{Status: 400, Code: "INVALID_DATA", Message: "the id given seems to be invalid"}, "zoho: INVALID_DATA (HTTP 400): the id given seems to be invalid"},
		{&NetError{Op: "upload", Err: errors.New("connection refused")}, "zoho: upload: connection refused"},
		{&NetError{Op: "upload", Sent: true, Err: errors.New("EOF")}, "zoho: upload: EOF (after the request was sent: it may have been stored)"},
		{&TokenError{Code: "weird", Description: "why"}, "zoho: token refresh refused (weird): why"},
		{&TokenError{Code: "Access Denied", RetryAfter: 10 * time.Minute}, "zoho: token refresh locked out (Access Denied): too many tokens minted for this refresh token; try again in 10m0s"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	ne := &NetError{Op: "x", Err: context.DeadlineExceeded}
	if !errors.Is(ne, context.DeadlineExceeded) {
		t.Error("NetError does not unwrap")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"Sat, 01 Mar 2025 12:01:00 GMT", time.Minute},
		{"Saturday, 01-Mar-25 12:00:10 GMT", 10 * time.Second},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0},
		{"99999999999999", 24 * time.Hour},
		{"Wed, 01 Mar 2045 12:00:00 GMT", 24 * time.Hour},
		{"soon", 0},
		{"1.5", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// tokenOnly is a fake whose CRM part is somewhere else (opts.APIDomain).
func tokenOnly(t *testing.T, apiDomain string) *Client {
	t.Helper()
	f := newFake(t)
	o := f.options()
	o.APIDomain = apiDomain
	c := mustNew(t, o)
	mustToken(t, c, accessToken(1))
	return c
}

func TestNetErrors(t *testing.T) {
	upload := func(c *Client, ctx context.Context) error {
		body := strings.Repeat("z", 4<<20)
		_, err := c.UploadFile(ctx, "Leads", testRecord, "z.bin", int64(len(body)), func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(body)), nil
		})
		return err
	}
	tests := []struct {
		name      string
		domain    func(t *testing.T) string
		timeout   time.Duration
		wantSent  bool
		wantClass Class
		wantIs    error
	}{
		{
			name: "refused",
			domain: func(t *testing.T) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				return "http://" + addr
			},
			wantClass: Transient,
		},
		{
			name: "dns",
			domain: func(*testing.T) string {
				return "http://crmdrop-test.invalid"
			},
			timeout:   10 * time.Second,
			wantClass: Transient,
		},
		{
			name: "reset mid-body",
			domain: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.CopyN(io.Discard, r.Body, 64<<10)
					conn, _, err := w.(http.Hijacker).Hijack()
					if err != nil {
						t.Error(err)
						return
					}
					conn.(*net.TCPConn).SetLinger(0) // RST, not FIN
					conn.Close()
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			wantSent:  true,
			wantClass: Ambiguous,
		},
		{
			name: "timeout after the body",
			domain: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					<-r.Context().Done() // never answers
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			timeout:   500 * time.Millisecond,
			wantSent:  true,
			wantClass: Ambiguous,
			wantIs:    context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tokenOnly(t, tt.domain(t))
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			err := upload(c, ctx)
			var ne *NetError
			if !errors.As(err, &ne) {
				t.Fatalf("UploadFile = %v, want *NetError", err)
			}
			if ne.Sent != tt.wantSent {
				t.Errorf("Sent = %v, want %v (%v)", ne.Sent, tt.wantSent, err)
			}
			if class, _ := Classify(err); class != tt.wantClass {
				t.Errorf("Classify(%v) = %v, want %v", err, class, tt.wantClass)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestCancelledUpload(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 1024)
		close(started)
		io.Copy(io.Discard, r.Body) // ends when the client gives up and closes

	}))
	t.Cleanup(srv.Close)
	c := tokenOnly(t, srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	pr, pw := io.Pipe() // a file whose reads never end until closed
	go func() {
		buf := make([]byte, 32<<10)
		for {
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
	}()
	_, err := c.UploadFile(ctx, "Leads", testRecord, "big.bin", 1<<40, func() (io.ReadCloser, error) { return pr, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("UploadFile = %v, want context.Canceled", err)
	}
	if class, _ := Classify(err); class != Transient {
		t.Errorf("Classify = %v, want transient", class)
	}
	pw.Close()
}

// Whatever a server echoes, no secret reaches an error string or the log.
func TestNoSecretsInErrors(t *testing.T) {
	secrets := []string{testSecret, testRefresh, accessToken(1), accessToken(2)}
	check := func(t *testing.T, what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s contains secret %q: %s", what, sec, s)
			}
		}
	}
	var logs syncBuffer
	f := newFake(t)
	var mu sync.Mutex
	tokenMode := "ok"
	f.setToken(func(n int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		switch tokenMode {
		case "echo error":
			return 200, fmt.Sprintf(`{"error":"invalid_thing","error_description":"bad secret %s for %s"}`, testSecret, testRefresh)
		case "echo 500":
			return 500, fmt.Sprintf(`client_secret=%s&refresh_token=%s`, testSecret, testRefresh)
		}
		return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":3600}`, accessToken(n))
	})
	f.setAPI(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		msg := fmt.Sprintf("bad header %s", r.Header.Get("Authorization"))
		switch r.URL.Query().Get("page") {
		case "1": // listing: a non-JSON echo
			writeJSON(w, 500, msg)
		default:
			writeJSON(w, 400, fmt.Sprintf(`{"code":"INVALID_DATA","message":%q,"status":"error"}`, msg))
		}
	})
	o := f.options()
	o.Logger = debugLogger(&logs)
	c := mustNew(t, o)

	_, err := c.UploadLink(t.Context(), "Leads", testRecord, "https://example.com", "")
	if err == nil {
		t.Fatal("UploadLink succeeded")
	}
	check(t, "upload error", err.Error())
	_, err = c.ListAttachments(t.Context(), "Leads", testRecord)
	if err == nil {
		t.Fatal("ListAttachments succeeded")
	}
	check(t, "list error", err.Error())

	for _, mode := range []string{"echo error", "echo 500"} {
		mu.Lock()
		tokenMode = mode
		mu.Unlock()
		c2 := mustNew(t, o)
		_, err := c2.Token(t.Context())
		if err == nil {
			t.Fatalf("%s: Token succeeded", mode)
		}
		check(t, mode+" error", err.Error())
		check(t, mode+" error (%#v)", fmt.Sprintf("%#v", err))
	}

	// Transport errors name neither the token nor the credentials.
	cRefused := tokenOnly(t, "http://127.0.0.1:1")
	_, err = cRefused.ListAttachments(t.Context(), "Leads", testRecord)
	if err == nil {
		t.Fatal("ListAttachments to a closed port succeeded")
	}
	check(t, "net error", err.Error())

	_, err = ExchangeGrant(t.Context(), nil, "http://127.0.0.1:1", testClientID, testSecret, testRefresh)
	if err == nil {
		t.Fatal("ExchangeGrant to a closed port succeeded")
	}
	check(t, "grant error", err.Error())
	check(t, "log", logs.String())
}

func FuzzAPIError(f *testing.F) {
	f.Add(400, `{"data":[{"code":"INVALID_DATA","message":"x","status":"error"}]}`)
	f.Add(200, `{"data":[{"code":"SUCCESS","details":{"id":"1"}}]}`)
	f.Add(202, `{"data":[{"code":"SUCCESS","details":{"id":12}}]}`)
	f.Add(500, `<html>`)
	f.Add(429, ``)
	f.Add(401, `{"code":"INVALID_TOKEN"}`)
	f.Add(200, `{"data":[{"details":{"id":null}}]}`)
	c, err := New(Options{AccountsURL: "https://accounts.zoho.com", ClientID: "id", ClientSecret: "secret", RefreshToken: "refresh"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		res := &response{status: status, header: http.Header{}, body: []byte(body), token: "tok"}
		id, err := c.createdID(res)
		if (err == nil) == (id == "") {
			t.Fatalf("createdID = %q, %v: want exactly one", id, err)
		}
		if err != nil {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code == "" || ae.Code == "SUCCESS" {
				t.Fatalf("createdID error = %#v, want an APIError with a failure code", err)
			}
		}
	})
}

func TestScrubKeepsChain(t *testing.T) {
	inner := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused " + testSecret)}
	err := scrubErr(fmt.Errorf("wrap: %w", inner), []string{testSecret})
	if strings.Contains(err.Error(), testSecret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("scrubErr text = %q", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Error("scrubErr lost the error chain")
	}
	plain := errors.New("nothing secret")
	if scrubErr(plain, []string{testSecret}) != plain {
		t.Error("scrubErr rewrapped an error with nothing to hide")
	}
}
