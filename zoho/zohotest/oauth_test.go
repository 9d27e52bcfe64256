package zohotest_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

func TestRefreshGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(f map[string][]string)
		wantErr string // "" = success
	}{
		{"valid", func(map[string][]string) {}, ""},
		{"wrong client id", func(f map[string][]string) { f["client_id"] = []string{"other"} }, "invalid_client"},
		{"wrong client secret", func(f map[string][]string) { f["client_secret"] = []string{"other"} }, "invalid_client"},
		{"missing client", func(f map[string][]string) { delete(f, "client_id") }, "invalid_client"},
		{"wrong refresh token", func(f map[string][]string) { f["refresh_token"] = []string{"1000.nope"} }, "invalid_code"},
		{"missing refresh token", func(f map[string][]string) { delete(f, "refresh_token") }, "invalid_code"},
		{"unknown grant type", func(f map[string][]string) { f["grant_type"] = []string{"password"} }, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := zohotest.NewServer(t, zohotest.Options{})
			c := newClient(t)
			form := refreshForm()
			tt.change(form)
			body := tokenRequest(t, c, s, form)
			if tt.wantErr != "" {
				if body["error"] != tt.wantErr || body["access_token"] != nil {
					t.Fatalf("answer = %v, want only error %q", body, tt.wantErr)
				}
				if n := len(s.Tokens()); n != 0 {
					t.Errorf("Tokens() has %d tokens after a refused grant, want 0", n)
				}
				if got := s.Requests(); got.Tokens != 1 || got.Rejected != 1 {
					t.Errorf("Requests() = %+v, want Tokens 1, Rejected 1", got)
				}
				return
			}
			tok, _ := body["access_token"].(string)
			if !strings.HasPrefix(tok, "1000.") || len(tok) < 40 {
				t.Errorf("access_token = %q, want 1000.<random hex>", tok)
			}
			if body["api_domain"] != s.URL() || body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 {
				t.Errorf("answer = %v, want api_domain %s, token_type Bearer, expires_in 3600", body, s.URL())
			}
			if _, ok := body["refresh_token"]; ok {
				t.Errorf("refresh grant answered a refresh_token: %v", body)
			}
			if got := s.Tokens(); !slices.Equal(got, []string{tok}) {
				t.Errorf("Tokens() = %v, want [%s]", got, tok)
			}
			if n := len(s.Minted()); n != 1 {
				t.Errorf("len(Minted()) = %d, want 1", n)
			}
		})
	}
}

func TestRefreshGrantDistinctTokens(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	a, b := mint(t, c, s), mint(t, c, s)
	if a == b {
		t.Fatalf("two mints gave the same token")
	}
}

func TestRefreshGrantInQueryString(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/oauth/v2/token?"+refreshForm().Encode(), nil)
	r := mustDo(t, c, req)
	if r.status != http.StatusOK || r.body["access_token"] == nil {
		t.Fatalf("query-string grant: HTTP %d %s, want a token", r.status, r.raw)
	}
}

func TestRevokedRefreshToken(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)
	s.RevokeRefreshToken("1000.test-refresh-token")
	if body := tokenRequest(t, c, s, refreshForm()); body["error"] != "invalid_code" {
		t.Fatalf("after revocation: %v, want error invalid_code", body)
	}
	// Access tokens already minted keep working, as at Zoho.
	if r := mustDo(t, c, listRequest(t, s, tok, "v2", "Leads", record, "")); r.status != http.StatusNoContent {
		t.Errorf("list with a pre-revocation token: HTTP %d, want 204", r.status)
	}
}

func TestLegacyExpiresIn(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{LegacyExpiresIn: true, TokenLifetime: 30 * time.Minute})
	body := tokenRequest(t, newClient(t), s, refreshForm())
	if body["expires_in"] != 1800000.0 || body["expires_in_sec"] != 1800.0 {
		t.Fatalf("answer = %v, want expires_in 1800000 (ms) and expires_in_sec 1800", body)
	}
}

func TestMintLimit(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := zohotest.NewServer(t, zohotest.Options{Now: clk.Now})
	c := newClient(t)
	start := clk.Now()
	for i := range 10 {
		if body := tokenRequest(t, c, s, refreshForm()); body["access_token"] == nil {
			t.Fatalf("mint %d: %v, want a token", i+1, body)
		}
		clk.Advance(time.Second)
	}
	denied := tokenRequest(t, c, s, refreshForm())
	want := map[string]any{
		"error":             "Access Denied",
		"error_description": "You have made too many requests continuously. Please try again after some time.",
		"status":            "failure",
	}
	if !equalJSON(denied, want) {
		t.Fatalf("11th mint in 10 minutes: %v, want %v", denied, want)
	}
	if n := len(s.Minted()); n != 10 {
		t.Errorf("len(Minted()) = %d, want 10 (refusals mint nothing)", n)
	}

	// The window slides: 10 minutes after the first mint, one more fits.
	clk.Advance(start.Add(10 * time.Minute).Sub(clk.Now()))
	if body := tokenRequest(t, c, s, refreshForm()); body["access_token"] == nil {
		t.Fatalf("mint once the first left the window: %v, want a token", body)
	}
	if body := tokenRequest(t, c, s, refreshForm()); body["error"] != "Access Denied" {
		t.Fatalf("mint with the window full again: %v, want Access Denied", body)
	}
	if got := s.Minted(); !got[0].Equal(start) || !got[10].Equal(start.Add(10*time.Minute)) {
		t.Errorf("Minted() = %v, want the clock's times", got)
	}
}

func TestMintLimitDisabled(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{MintLimit: -1})
	c := newClient(t)
	for range 15 {
		mint(t, c, s)
	}
}

func TestAuthorizationCodeGrant(t *testing.T) {
	t.Parallel()
	s := zohotest.NewServer(t, zohotest.Options{GrantCodes: []string{"1000.grant-a", "1000.grant-b"}, RefreshToken: "1000.issued"})
	c := newClient(t)
	form := func(code, secret string) map[string][]string {
		return map[string][]string{
			"grant_type":    {"authorization_code"},
			"client_id":     {"test-client-id"},
			"client_secret": {secret},
			"code":          {code},
		}
	}
	body := tokenRequest(t, c, s, form("1000.grant-a", "test-client-secret"))
	if body["refresh_token"] != "1000.issued" || body["access_token"] == nil || body["api_domain"] != s.URL() {
		t.Fatalf("code exchange: %v, want refresh_token 1000.issued, an access token and api_domain", body)
	}
	if body := tokenRequest(t, c, s, form("1000.grant-a", "test-client-secret")); body["error"] != "invalid_code" {
		t.Errorf("second use of a code: %v, want invalid_code", body)
	}
	if body := tokenRequest(t, c, s, form("1000.never", "test-client-secret")); body["error"] != "invalid_code" {
		t.Errorf("unknown code: %v, want invalid_code", body)
	}
	if body := tokenRequest(t, c, s, form("1000.grant-b", "wrong")); body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %v, want invalid_client", body)
	}
	if body := tokenRequest(t, c, s, form("1000.grant-b", "test-client-secret")); body["refresh_token"] != "1000.issued" {
		t.Errorf("code refused for a wrong client was consumed: %v", body)
	}
	rf := refreshForm()
	rf.Set("refresh_token", "1000.issued")
	if body := tokenRequest(t, c, s, rf); body["access_token"] == nil {
		t.Errorf("refresh grant with the issued refresh token: %v, want a token", body)
	}
}

func TestAccessTokenValidity(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := zohotest.NewServer(t, zohotest.Options{Now: clk.Now})
	c := newClient(t)
	tok := mint(t, c, s)

	list := func(auth string) response {
		req := listRequest(t, s, "", "v2", "Leads", record, "")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return mustDo(t, c, req)
	}
	wantError(t, list(""), http.StatusUnauthorized, "AUTHENTICATION_FAILURE")
	wantError(t, list("Bearer "+tok), http.StatusUnauthorized, "AUTHENTICATION_FAILURE")
	wantError(t, list("Zoho-oauthtoken 1000.unknown"), http.StatusUnauthorized, "AUTHENTICATION_FAILURE")

	clk.Advance(time.Hour - time.Second)
	if r := list("Zoho-oauthtoken " + tok); r.status != http.StatusNoContent {
		t.Fatalf("token 1s before expiry: HTTP %d %s, want 204", r.status, r.raw)
	}
	clk.Advance(time.Second)
	r := list("Zoho-oauthtoken " + tok)
	want := map[string]any{"code": "INVALID_TOKEN", "details": map[string]any{}, "message": "invalid oauth token", "status": "error"}
	if r.status != http.StatusUnauthorized || !equalJSON(r.body, want) {
		t.Fatalf("expired token: HTTP %d %s, want 401 %v", r.status, r.raw, want)
	}

	fresh := mint(t, c, s)
	if r := list("Zoho-oauthtoken " + fresh); r.status != http.StatusNoContent {
		t.Fatalf("fresh token: HTTP %d, want 204", r.status)
	}
	s.ExpireTokens()
	wantError(t, list("Zoho-oauthtoken "+fresh), http.StatusUnauthorized, "INVALID_TOKEN")
	if r := list("Zoho-oauthtoken " + mint(t, c, s)); r.status != http.StatusNoContent {
		t.Errorf("token minted after ExpireTokens: HTTP %d, want 204", r.status)
	}
}

func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
