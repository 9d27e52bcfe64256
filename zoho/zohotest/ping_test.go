package zohotest_test

import (
	"net/http"
	"testing"

	"crmdrop/zoho/zohotest"
)

func recordsRequest(t *testing.T, s *zohotest.Server, tok, version, module, query string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/crm/"+version+"/"+module+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
	}
	return req
}

func TestRecords(t *testing.T) {
	s := zohotest.NewServer(t, zohotest.Options{})
	c := newClient(t)
	tok := mint(t, c, s)

	// No attachment yet: the module is empty.
	if r := mustDo(t, c, recordsRequest(t, s, tok, "v2", "Leads", "per_page=1")); r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("empty module: HTTP %d %q, want 204 and no body", r.status, r.raw)
	}
	if r := uploadFile(t, c, s, tok, "a.txt", []byte("hello")); r.status != http.StatusOK {
		t.Fatalf("upload: HTTP %d %s", r.status, r.raw)
	}
	r := mustDo(t, c, recordsRequest(t, s, tok, "v8", "Leads", "fields=id&per_page=1"))
	if r.status != http.StatusOK {
		t.Fatalf("records: HTTP %d %s, want 200", r.status, r.raw)
	}
	data, _ := r.body["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["id"] != record {
		t.Errorf("records data = %v, want [{id: %s}]", r.body["data"], record)
	}
	if got := s.Requests().Records; got != 2 {
		t.Errorf("Requests().Records = %d, want 2", got)
	}

	tests := []struct {
		name, tok, version, module, query string
		status                            int
		code                              string
	}{
		{"no token", "", "v2", "Leads", "", 401, "AUTHENTICATION_FAILURE"},
		{"unknown module", tok, "v2", "Nope", "", 400, "INVALID_MODULE"},
		{"v3 without fields", tok, "v3", "Leads", "", 400, "REQUIRED_PARAM_MISSING"},
		{"bad per_page", tok, "v2", "Leads", "per_page=0", 400, "INVALID_DATA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, mustDo(t, c, recordsRequest(t, s, tt.tok, tt.version, tt.module, tt.query)), tt.status, tt.code)
		})
	}

	s.SetScopeMismatch(true)
	wantError(t, mustDo(t, c, recordsRequest(t, s, tok, "v2", "Leads", "")), 401, "OAUTH_SCOPE_MISMATCH")
	s.SetScopeMismatch(false)
	s.ExpireTokens()
	wantError(t, mustDo(t, c, recordsRequest(t, s, tok, "v2", "Leads", "")), 401, "INVALID_TOKEN")

	// Other methods on a module path are still refused as before.
	req := recordsRequest(t, s, mint(t, c, s), "v2", "Leads", "")
	req.Method = http.MethodPost
	if r := mustDo(t, c, req); r.status/100 != 4 {
		t.Errorf("POST /crm/v2/Leads: HTTP %d, want a 4xx", r.status)
	}
}
