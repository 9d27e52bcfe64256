package zoho

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	ok := Options{AccountsURL: "https://accounts.zoho.com", ClientID: "id", ClientSecret: "secret", RefreshToken: "refresh"}
	tests := []struct {
		name string
		mod  func(*Options)
		want string // substring of the error; "" = no error
	}{
		{"valid", func(*Options) {}, ""},
		{"no accounts", func(o *Options) { o.AccountsURL = "" }, "accounts_url is empty"},
		{"bad accounts", func(o *Options) { o.AccountsURL = "accounts.zoho.com" }, "not an http(s) URL"},
		{"bad api domain", func(o *Options) { o.APIDomain = "ftp://x" }, "api_domain"},
		{"no client id", func(o *Options) { o.ClientID = "" }, "client_id is empty"},
		{"no secret", func(o *Options) { o.ClientSecret = " " }, "client_secret is empty"},
		{"no refresh", func(o *Options) { o.RefreshToken = "" }, "refresh_token is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			_, err := New(o)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestMintSendsRefreshGrant(t *testing.T) {
	f := newFake(t)
	c := mustNew(t, f.options())
	tok, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok != accessToken(1) {
		t.Errorf("Token = %q, want %q", tok, accessToken(1))
	}
	f.mu.Lock()
	form := f.forms[0]
	f.mu.Unlock()
	want := map[string]string{"grant_type": "refresh_token", "client_id": testClientID, "client_secret": testSecret, "refresh_token": testRefresh}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	// A second call reuses the token.
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Minted() != 1 || f.mintCount() != 1 {
		t.Errorf("Minted = %d, server mints = %d, want 1, 1", c.Minted(), f.mintCount())
	}
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		in, inSec string // raw JSON, "" = absent
		want      time.Duration
	}{
		{"3600", "", time.Hour},
		{"3600000", "3600", time.Hour},
		{"3600000", "", time.Hour},
		{"120", "", 2 * time.Minute},
		{`"3600"`, "", time.Hour},
		{"864000", "", 240 * time.Hour},
		{"864001", "", 864001 * time.Millisecond},
		{"", "", time.Hour},
		{"0", "", time.Hour},
		{"-5", "", time.Hour},
		{`"soon"`, "", time.Hour},
		{"3600", "1800", 30 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.in+"/"+tt.inSec, func(t *testing.T) {
			var in, sec json.RawMessage
			if tt.in != "" {
				in = json.RawMessage(tt.in)
			}
			if tt.inSec != "" {
				sec = json.RawMessage(tt.inSec)
			}
			if got := lifetime(in, sec); got != tt.want {
				t.Errorf("lifetime(%s, %s) = %v, want %v", tt.in, tt.inSec, got, tt.want)
			}
		})
	}
}

func TestMillisecondExpiresIn(t *testing.T) {
	f := newFake(t)
	f.setToken(func(n int) (int, string) {
		return 200, fmt.Sprintf(`{"access_token":%q,"api_domain":%q,"expires_in":3600000}`, accessToken(n), f.srv.URL)
	})
	clk := newManualClock()
	o := f.options()
	o.Clock = clk
	c := mustNew(t, o)
	mustToken(t, c, accessToken(1))
	clk.Advance(54 * time.Minute)
	mustToken(t, c, accessToken(1)) // read as seconds it would live 41 days; as ms, one hour
	clk.Advance(2 * time.Minute)
	mustToken(t, c, accessToken(2))
}

func mustToken(t *testing.T, c *Client, want string) {
	t.Helper()
	got, err := c.Token(t.Context())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got != want {
		t.Fatalf("Token = %q, want %q", got, want)
	}
}

func TestProactiveRefresh(t *testing.T) {
	tests := []struct {
		expiresIn   int
		keep, renew time.Duration // ages at which the token is still used / replaced
	}{
		{expiresIn: 3600, keep: 55*time.Minute - time.Second, renew: 55*time.Minute + time.Second},  // min(5m, 6m) = 5m
		{expiresIn: 600, keep: 540*time.Second - time.Second, renew: 540*time.Second + time.Second}, // min(5m, 60s) = 60s
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.expiresIn), func(t *testing.T) {
			f := newFake(t)
			f.setToken(func(n int) (int, string) {
				return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":%d}`, accessToken(n), tt.expiresIn)
			})
			clk := newManualClock()
			o := f.options()
			o.Clock = clk
			c := mustNew(t, o)
			mustToken(t, c, accessToken(1))
			clk.Advance(tt.keep)
			mustToken(t, c, accessToken(1))
			clk.Advance(tt.renew - tt.keep)
			mustToken(t, c, accessToken(2))
			if c.Minted() != 2 {
				t.Errorf("Minted = %d, want 2", c.Minted())
			}
		})
	}
}

func TestTokenSingleFlight(t *testing.T) {
	f := newFake(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	f.setToken(func(n int) (int, string) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":3600}`, accessToken(n))
	})
	c := mustNew(t, f.options())

	const n = 16
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = c.Token(t.Context()) })
	}
	<-entered
	// While the mint is in flight, a caller whose ctx ends gives up instead of waiting.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Token(cancelled ctx) during mint = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != accessToken(1) {
			t.Errorf("caller %d: Token = %q, %v, want %q", i, toks[i], errs[i], accessToken(1))
		}
	}
	if f.mintCount() != 1 || c.Minted() != 1 {
		t.Errorf("server mints = %d, Minted = %d, want 1, 1", f.mintCount(), c.Minted())
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retry     string // Retry-After header on the token response
		wantType  string // "token" or "api"
		wantCode  string
		wantClass Class
		wantHint  time.Duration
		wantText  string
	}{
		{"invalid_code", 200, `{"error":"invalid_code"}`, "", "token", "invalid_code", Global, 0, "revoked or is wrong"},
		{"invalid_client", 200, `{"error":"invalid_client"}`, "", "token", "invalid_client", Global, 0, "data center"},
		{"access denied", 200, `{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}`, "", "token", "Access Denied", Global, 10 * time.Minute, "locked out"},
		{"error in a 400", 400, `{"error":"invalid_client"}`, "", "token", "invalid_client", Global, 0, "invalid_client"},
		{"server error", 500, `<html>oops</html>`, "", "api", "HTTP_500", Transient, 0, "token refresh"},
		{"rate limited", 429, ``, "30", "api", "HTTP_429", Transient, 30 * time.Second, "HTTP 429"},
		{"garbage 200", 200, `not json`, "", "api", "INVALID_RESPONSE", Transient, 0, "unreadable"},
		{"no access token", 200, `{"token_type":"Bearer"}`, "", "api", "INVALID_RESPONSE", Transient, 0, "no access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.setToken(func(int) (int, string) { return tt.status, tt.body })
			f.mu.Lock()
			f.tokenRetryAfter = tt.retry
			f.mu.Unlock()
			c := mustNew(t, f.options())
			_, err := c.Token(t.Context())
			if err == nil {
				t.Fatal("Token = nil error")
			}
			switch tt.wantType {
			case "token":
				var te *TokenError
				if !errors.As(err, &te) || te.Code != tt.wantCode {
					t.Fatalf("Token error = %#v, want TokenError %s", err, tt.wantCode)
				}
			case "api":
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("Token error = %#v, want APIError %s", err, tt.wantCode)
				}
			}
			class, hint := Classify(err)
			if class != tt.wantClass || hint != tt.wantHint {
				t.Errorf("Classify(%v) = %v, %v, want %v, %v", err, class, hint, tt.wantClass, tt.wantHint)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if c.Minted() != 0 {
				t.Errorf("Minted = %d after a failure, want 0", c.Minted())
			}
		})
	}
}

func TestAccessDeniedLockout(t *testing.T) {
	f := newFake(t)
	f.setToken(func(n int) (int, string) {
		if n == 1 {
			return 200, `{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}`
		}
		return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":3600}`, accessToken(n))
	})
	clk := newManualClock()
	o := f.options()
	o.Clock = clk
	c := mustNew(t, o)
	if _, err := c.Token(t.Context()); err == nil {
		t.Fatal("first Token succeeded, want Access Denied")
	}
	clk.Advance(4 * time.Minute)
	_, err := c.Token(t.Context())
	var te *TokenError
	if !errors.As(err, &te) || te.RetryAfter != 6*time.Minute {
		t.Fatalf("Token during lockout = %v, want TokenError with RetryAfter 6m", err)
	}
	if _, hint := Classify(err); hint != 6*time.Minute {
		t.Errorf("Classify hint = %v, want 6m", hint)
	}
	if f.mintCount() != 1 {
		t.Errorf("server got %d token requests during the lockout, want 1", f.mintCount())
	}
	clk.Advance(6 * time.Minute)
	mustToken(t, c, accessToken(2))
}

func TestTokenCache(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "token.json")
	clk := newManualClock()
	o := f.options()
	o.TokenCache = path
	o.Clock = clk

	c1 := mustNew(t, o)
	mustToken(t, c1, accessToken(1))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("cache not written: %v", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode = %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), testRefresh) || strings.Contains(string(data), testSecret) {
		t.Errorf("cache holds a credential: %s", data)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("cache folder holds %d files, want 1 (no temp files left)", len(ents))
	}

	t.Run("restart reuses", func(t *testing.T) {
		c2 := mustNew(t, o)
		mustToken(t, c2, accessToken(1))
		if c2.Minted() != 0 || f.mintCount() != 1 {
			t.Errorf("Minted = %d, server mints = %d, want 0, 1", c2.Minted(), f.mintCount())
		}
	})
	t.Run("other refresh token", func(t *testing.T) {
		o2 := o
		o2.RefreshToken = testRefresh + "-new"
		c3 := mustNew(t, o2)
		tok, err := c3.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tok == accessToken(1) || c3.Minted() != 1 {
			t.Errorf("Token = %q, Minted = %d: the old credentials' token was reused", tok, c3.Minted())
		}
	})
	t.Run("other client", func(t *testing.T) {
		o2 := o
		o2.TokenCache = filepath.Join(dir, "other.json")
		mustToken(t, mustNew(t, o2), accessToken(f.mintCount()+1))
		data, _ := os.ReadFile(o2.TokenCache)
		o2.ClientID = "1000.OTHER"
		c := mustNew(t, o2)
		before := f.mintCount()
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		if c.Minted() != 1 || f.mintCount() != before+1 {
			t.Errorf("Minted = %d: cache %s reused for another client", c.Minted(), data)
		}
	})
	t.Run("expired", func(t *testing.T) {
		o2 := o
		o2.TokenCache = filepath.Join(dir, "expiring.json")
		mustNew(t, o2).Token(t.Context())
		clk.Advance(2 * time.Hour)
		c := mustNew(t, o2)
		before := f.mintCount()
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		if f.mintCount() != before+1 {
			t.Errorf("an expired cached token was used")
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		bad := filepath.Join(dir, "corrupt.json")
		if err := os.WriteFile(bad, []byte(`{"access_token": trunc`), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		o2 := o
		o2.TokenCache = bad
		o2.Logger = debugLogger(&logs)
		c, err := New(o2)
		if err != nil {
			t.Fatalf("New with a corrupt cache = %v, want nil", err)
		}
		if _, err := c.Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		if c.Minted() != 1 {
			t.Errorf("Minted = %d, want 1", c.Minted())
		}
		if !strings.Contains(logs.String(), "corrupt") {
			t.Errorf("log does not mention the corrupt cache: %s", logs.String())
		}
		var cf cacheFile
		data, _ := os.ReadFile(bad)
		if err := json.Unmarshal(data, &cf); err != nil || cf.AccessToken == "" {
			t.Errorf("corrupt cache not replaced by a good one: %s", data)
		}
	})
}

func TestExchangeGrant(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr string
	}{
		{"ok", `{"access_token":"1000.a","refresh_token":"1000.NEWREFRESH","api_domain":"https://www.zohoapis.com","expires_in":3600}`, "1000.NEWREFRESH", ""},
		{"used code", `{"error":"invalid_code"}`, "", "grant token rejected"},
		{"no refresh", `{"access_token":"1000.a","expires_in":3600}`, "", "no refresh token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.setToken(func(int) (int, string) { return 200, tt.body })
			got, err := ExchangeGrant(t.Context(), nil, f.srv.URL, testClientID, testSecret, "1000.GRANTCODE")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ExchangeGrant = %q, %v, want error containing %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "1000.GRANTCODE") {
					t.Errorf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ExchangeGrant = %q, %v, want %q", got, err, tt.want)
			}
			f.mu.Lock()
			form := f.forms[0]
			f.mu.Unlock()
			if form.Get("grant_type") != "authorization_code" || form.Get("code") != "1000.GRANTCODE" || form.Get("client_id") != testClientID || form.Get("client_secret") != testSecret {
				t.Errorf("form = %v", form)
			}
		})
	}
}

// countingClock reports every Now call, so a test knows when callers have looked at
// the token state.
type countingClock struct {
	*manualClock
	calls chan struct{}
}

func (c countingClock) Now() time.Time {
	c.calls <- struct{}{}
	return c.manualClock.Now()
}

// Callers that waited on a mint that failed get its error; they do not each mint.
func TestFailedMintShared(t *testing.T) {
	f := newFake(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	f.setToken(func(int) (int, string) {
		close(entered)
		<-release
		return 200, `{"error":"invalid_code"}`
	})
	clk := countingClock{newManualClock(), make(chan struct{}, 100)}
	o := f.options()
	o.Clock = clk
	c := mustNew(t, o)

	const followers = 7
	errs := make(chan error, followers+1)
	go func() { _, err := c.Token(t.Context()); errs <- err }()
	<-entered // the leader holds the flight; it has read the clock twice
	for range 2 {
		<-clk.calls
	}
	for range followers {
		go func() { _, err := c.Token(t.Context()); errs <- err }()
	}
	for range followers { // each follower has read the state and waits for the flight
		<-clk.calls
	}
	close(release)
	for range followers + 1 {
		var te *TokenError
		if err := <-errs; !errors.As(err, &te) || te.Code != "invalid_code" {
			t.Errorf("Token = %v, want TokenError invalid_code", err)
		}
	}
	if f.mintCount() != 1 {
		t.Errorf("server got %d token requests, want 1", f.mintCount())
	}
}

// A refresh that fails while the old token has not expired yet does not fail the
// request, and is not retried on every call.
func TestEarlyRefreshFailureKeepsToken(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	down := false
	f.setToken(func(n int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return 503, "maintenance"
		}
		return 200, fmt.Sprintf(`{"access_token":%q,"expires_in":3600}`, accessToken(n))
	})
	clk := newManualClock()
	o := f.options()
	o.Clock = clk
	c := mustNew(t, o)
	mustToken(t, c, accessToken(1))
	mu.Lock()
	down = true
	mu.Unlock()

	clk.Advance(56 * time.Minute) // due for refresh, 4 minutes left
	mustToken(t, c, accessToken(1))
	if f.mintCount() != 2 {
		t.Fatalf("server mints = %d, want 2 (one early refresh tried)", f.mintCount())
	}
	clk.Advance(10 * time.Second)
	mustToken(t, c, accessToken(1))
	if f.mintCount() != 2 {
		t.Errorf("server mints = %d, want 2: a failed refresh was retried at once", f.mintCount())
	}
	clk.Advance(30 * time.Second)
	mustToken(t, c, accessToken(1))
	if f.mintCount() != 3 {
		t.Errorf("server mints = %d, want 3: no new refresh after the pause", f.mintCount())
	}
	clk.Advance(4 * time.Minute) // expired
	_, err := c.Token(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Fatalf("Token after expiry = %v, want the accounts server's 503", err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	mustToken(t, c, accessToken(5))
}
