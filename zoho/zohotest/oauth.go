package zohotest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// token serves POST /oauth/v2/token. Zoho's accounts server answers its
// failures with HTTP 200 and an "error" field, so this does too.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts.Tokens++
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		s.reject()
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	// Zoho takes the parameters in the query string as well as in the form.
	if err := r.ParseForm(); err != nil {
		s.reject()
		writeJSON(w, http.StatusOK, map[string]string{"error": "invalid_request"})
		return
	}
	if r.Form.Get("client_id") != s.opts.ClientID || r.Form.Get("client_secret") != s.opts.ClientSecret {
		s.deny(w, "invalid_client")
		return
	}

	now := s.opts.Now()
	s.mu.Lock()
	var refresh string
	switch r.Form.Get("grant_type") {
	case "refresh_token":
		refresh = r.Form.Get("refresh_token")
		if !s.refreshTokens[refresh] {
			s.mu.Unlock()
			s.deny(w, "invalid_code")
			return
		}
	case "authorization_code":
		if !s.grantCodes[r.Form.Get("code")] {
			s.mu.Unlock()
			s.deny(w, "invalid_code")
			return
		}
		refresh = s.opts.RefreshToken
	default:
		s.mu.Unlock()
		s.deny(w, "unsupported_grant_type")
		return
	}
	if s.mintLimited(refresh, now) {
		s.counts.Rejected++
		s.mu.Unlock()
		s.logf("token mint refused: more than %d in %v", s.opts.MintLimit, s.opts.MintWindow)
		writeJSON(w, http.StatusOK, map[string]string{
			"error":             "Access Denied",
			"error_description": "You have made too many requests continuously. Please try again after some time.",
			"status":            "failure",
		})
		return
	}
	if r.Form.Get("grant_type") == "authorization_code" {
		delete(s.grantCodes, r.Form.Get("code")) // one-time
		s.refreshTokens[refresh] = true
	}
	tok := newAccessToken()
	s.tokens[tok] = &accessToken{expires: now.Add(s.opts.TokenLifetime)}
	s.tokenList = append(s.tokenList, tok)
	s.minted = append(s.minted, now)
	s.mints[refresh] = append(s.mints[refresh], now)
	n := len(s.minted)
	s.mu.Unlock()
	s.logf("access token #%d minted (%s grant)", n, r.Form.Get("grant_type"))

	resp := map[string]any{
		"access_token": tok,
		"api_domain":   s.url,
		"token_type":   "Bearer",
		"expires_in":   int64(s.opts.TokenLifetime / time.Second),
	}
	if s.opts.LegacyExpiresIn {
		resp["expires_in"] = s.opts.TokenLifetime.Milliseconds()
		resp["expires_in_sec"] = int64(s.opts.TokenLifetime / time.Second)
	}
	if r.Form.Get("grant_type") == "authorization_code" {
		resp["refresh_token"] = refresh
		resp["scope"] = "ZohoCRM.modules.ALL"
	}
	writeJSON(w, http.StatusOK, resp)
}

// mintLimited drops mints of refresh that fell out of the window and reports
// whether one more would exceed the limit. Refused attempts do not count.
// s.mu must be held.
func (s *Server) mintLimited(refresh string, now time.Time) bool {
	if s.opts.MintLimit < 0 {
		return false
	}
	kept := s.mints[refresh][:0]
	for _, t := range s.mints[refresh] {
		if now.Sub(t) < s.opts.MintWindow {
			kept = append(kept, t)
		}
	}
	s.mints[refresh] = kept
	return len(kept) >= s.opts.MintLimit
}

func (s *Server) deny(w http.ResponseWriter, code string) {
	s.reject()
	s.logf("token request refused: %s", code)
	writeJSON(w, http.StatusOK, map[string]string{"error": code})
}

func (s *Server) reject() {
	s.mu.Lock()
	s.counts.Rejected++
	s.mu.Unlock()
}

// newAccessToken returns a token shaped like Zoho's: "1000.<hex>.<hex>".
func newAccessToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "1000." + hex.EncodeToString(b[:16]) + "." + hex.EncodeToString(b[16:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
