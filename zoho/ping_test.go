package zoho_test

import (
	"errors"
	"testing"

	"crmdrop/zoho"
	"crmdrop/zoho/zohotest"
)

func TestPing(t *testing.T) {
	tests := []struct {
		name     string
		module   string
		version  string
		scope    bool // the fake answers OAUTH_SCOPE_MISMATCH
		wantCode string
		local    bool // refused before any request
	}{
		{name: "empty module", module: "Leads", version: "v2"},
		{name: "v8 sends fields", module: "Contacts", version: "v8"},
		{name: "unknown module", module: "Nope", version: "v2", wantCode: "INVALID_MODULE"},
		{name: "scope mismatch", module: "Leads", version: "v2", scope: true, wantCode: "OAUTH_SCOPE_MISMATCH"},
		{name: "not a module name", module: "Leads/1", version: "v2", local: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := zohotest.NewServer(t, zohotest.Options{})
			fake.SetScopeMismatch(tt.scope)
			c, err := zoho.New(zoho.Options{
				AccountsURL: fake.URL(), APIVersion: tt.version,
				ClientID: zohotest.DefaultClientID, ClientSecret: zohotest.DefaultClientSecret, RefreshToken: zohotest.DefaultRefreshToken,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Ping(t.Context(), tt.module)
			var ae *zoho.APIError
			switch {
			case tt.local:
				if err == nil || fake.Requests().Records != 0 {
					t.Errorf("Ping(%q) = %v after %d requests, want a local error and none", tt.module, err, fake.Requests().Records)
				}
			case tt.wantCode == "":
				if err != nil {
					t.Errorf("Ping(%q) = %v, want nil", tt.module, err)
				}
			case !errors.As(err, &ae) || ae.Code != tt.wantCode:
				t.Errorf("Ping(%q) = %v, want an APIError %s", tt.module, err, tt.wantCode)
			}
			if !tt.local && fake.Requests().Records != 1 {
				t.Errorf("record reads = %d, want 1", fake.Requests().Records)
			}
		})
	}
}
