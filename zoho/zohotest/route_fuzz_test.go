package zohotest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRoute feeds arbitrary methods, paths and queries to the router with a
// valid token: every answer must be a JSON body or an empty 204, never a
// panic or an implicit 200.
func FuzzRoute(f *testing.F) {
	for _, seed := range [][3]string{
		{"GET", "/crm/v2/Leads/123/Attachments", "page=1&per_page=2"},
		{"GET", "/crm/v3/Leads/123/Attachments", "fields=id,File_Name&page=99999999999999999999"},
		{"POST", "/crm/v8/Price_Books/3477061000005177002/Attachments", ""},
		{"DELETE", "/crm/v2.1/Leads/1/Attachments/3477061000010000001", ""},
		{"GET", "/crm//Leads//Attachments", "fields="},
		{"POST", "/oauth/v2/token", "grant_type=refresh_token&client_id=test-client-id"},
		{"PUT", "/crm/v2/x/y/Attachments/z/w", ""},
		{"GET", "/", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	form := url.Values{
		"grant_type": {"refresh_token"}, "client_id": {"test-client-id"},
		"client_secret": {"test-client-secret"}, "refresh_token": {"1000.test-refresh-token"},
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/oauth/v2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.serveHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		f.Fatalf("mint: %v %s", err, rec.Body)
	}

	f.Fuzz(func(t *testing.T, method, path, query string) {
		req := (&http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{"Authorization": {"Zoho-oauthtoken " + tok.AccessToken}},
			Body:       http.NoBody,
		}).WithContext(t.Context())
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, req)
		if rec.Code == http.StatusNoContent {
			if rec.Body.Len() != 0 {
				t.Fatalf("%s %s?%s: 204 with a body %q", method, path, query, rec.Body)
			}
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s?%s: HTTP %d, body not JSON: %q", method, path, query, rec.Code, rec.Body)
		}
	})
}
