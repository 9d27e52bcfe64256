package zoho

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// token is an access token and what we know of its life.
type token struct {
	access    string
	apiDomain string
	issued    time.Time
	expires   time.Time
}

// fresh reports whether t is still worth using at now: it is refreshed once less
// than the smaller of 5 minutes and a tenth of its lifetime remains, so a request
// started with it does not outlive it.
func (t token) fresh(now time.Time) bool {
	if t.access == "" {
		return false
	}
	life := t.expires.Sub(t.issued)
	if life <= 0 {
		life = time.Hour
	}
	return now.Before(t.expires.Add(-min(5*time.Minute, life/10)))
}

// token returns a fresh token, minting one if needed. One goroutine mints at a time;
// the others wait (or give up with ctx) and then use its result, including its
// failure: a mint that failed is not repeated by everyone who waited for it, since
// Zoho locks a refresh token out after 10 mints in 10 minutes. While a refresh
// fails, a token that is due for refresh but not yet expired is still used.
func (c *Client) token(ctx context.Context) (token, error) {
	c.mu.Lock()
	t, seq, failAt := c.cur, c.failSeq, c.failAt
	c.mu.Unlock()
	now := c.clock.Now()
	if t.fresh(now) || (!failAt.IsZero() && now.Before(failAt.Add(refreshRetry)) && t.usable(now)) {
		return t, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return token{}, ctx.Err()
	}
	defer func() { <-c.sem }()

	now = c.clock.Now()
	c.mu.Lock()
	t, failSeq, failErr := c.cur, c.failSeq, c.failErr
	lockUntil, lockErr := c.lockUntil, c.lockErr
	c.mu.Unlock()
	switch {
	case t.fresh(now):
		return t, nil
	case failSeq != seq:
		return t.orElse(now, failErr)
	case now.Before(lockUntil):
		e := *lockErr
		e.RetryAfter = lockUntil.Sub(now)
		return t.orElse(now, &e)
	}

	nt, err := c.mint(ctx, now)
	if err != nil {
		c.mu.Lock()
		var te *TokenError
		if errors.As(err, &te) && te.lockout() {
			c.lockUntil, c.lockErr = now.Add(te.RetryAfter), te
		}
		// A mint cut short by this caller's own ctx is no news for the others.
		if ctx.Err() == nil {
			c.failSeq++
			c.failErr = err
			c.failAt = now
		}
		c.mu.Unlock()
		return t.orElse(now, err)
	}
	c.mu.Lock()
	c.cur = nt
	c.mu.Unlock()
	c.saveCache(nt) // still holding sem: writes are serialised
	return nt, nil
}

// orElse is t if it has not expired yet (a failed early refresh costs nothing), else err.
func (t token) orElse(now time.Time, err error) (token, error) {
	if t.usable(now) {
		return t, nil
	}
	return token{}, err
}

// usable reports whether t has not expired: past fresh, but still accepted by Zoho.
func (t token) usable(now time.Time) bool { return t.access != "" && now.Before(t.expires) }

// refreshRetry spaces early-refresh attempts while the old token still works, so a
// failing accounts server is not asked once per request.
const refreshRetry = 30 * time.Second

// invalidate drops the current token after Zoho rejected access, but only if it is
// still the current one: when many requests fail with the same token, only the first
// rejection forces a new mint.
func (c *Client) invalidate(access string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.access == access {
		c.cur = token{}
	}
}

func (c *Client) mint(ctx context.Context, now time.Time) (token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.clientID},
		"client_secret": {c.secret},
		"refresh_token": {c.refresh},
	}
	tr, err := postToken(ctx, c.hc, c.accounts, form, c.clock, false, c.secret, c.refresh)
	if err != nil {
		c.log.Debug("zoho token refresh failed", "err", err)
		return token{}, err
	}
	if tr.AccessToken == "" {
		return token{}, &APIError{Status: http.StatusOK, Code: "INVALID_RESPONSE", Message: "the accounts server sent no access_token", auth: true}
	}
	c.minted.Add(1)
	if c.onMint != nil {
		c.onMint()
	}
	life := lifetime(tr.ExpiresIn, tr.ExpiresInSec)
	t := token{
		access:    tr.AccessToken,
		apiDomain: strings.TrimRight(tr.APIDomain, "/"),
		issued:    now,
		expires:   now.Add(life),
	}
	c.log.Info("zoho token minted", "lifetime", life, "api_domain", t.apiDomain)
	return t, nil
}

// lifetime reads a token's lifetime. Old accounts servers sent expires_in in
// milliseconds next to expires_in_sec; no token lives ten days, so a larger
// expires_in must be milliseconds. Missing or unreadable: Zoho's usual hour.
func lifetime(expiresIn, expiresInSec json.RawMessage) time.Duration {
	if s := jsonNumber(expiresInSec); s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	v := jsonNumber(expiresIn)
	switch {
	case v <= 0:
		return time.Hour
	case v > 86400*10:
		return time.Duration(v * float64(time.Millisecond))
	}
	return time.Duration(v * float64(time.Second))
}

// jsonNumber reads a JSON number or a string holding one; 0 when neither.
func jsonNumber(raw json.RawMessage) float64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e12 {
		return 0
	}
	return f
}

type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	RefreshToken     string          `json:"refresh_token"`
	APIDomain        string          `json:"api_domain"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	ExpiresInSec     json.RawMessage `json:"expires_in_sec"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// postToken calls {accounts}/oauth/v2/token. Zoho reports refusals as HTTP 200 with
// an "error" field (TokenError); any other status is the server failing (APIError,
// transient). secrets are scrubbed from anything the server echoes.
func postToken(ctx context.Context, hc *http.Client, accounts string, form url.Values, clock Clock, grant bool, secrets ...string) (*tokenResponse, error) {
	const op = "token request"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, accounts+"/oauth/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &localError{class: Global, msg: "zoho: " + op + ": " + redact(err.Error(), secrets...)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &NetError{Op: op, Err: scrubErr(innerErr(err), secrets)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &NetError{Op: op, Err: scrubErr(innerErr(err), secrets)}
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(data, &tr)
	// Refusals are HTTP 200; accept them from a 4xx too, as the meaning is the same.
	if jsonErr == nil && tr.Error != "" && (resp.StatusCode == http.StatusOK || resp.StatusCode/100 == 4) {
		te := &TokenError{Code: tr.Error, Description: redact(tr.ErrorDescription, secrets...), grant: grant}
		if te.lockout() {
			te.RetryAfter = accessDeniedWait
		}
		return nil, te
	}
	if resp.StatusCode != http.StatusOK || jsonErr != nil {
		ae := &APIError{
			Status:     resp.StatusCode,
			Code:       fmt.Sprintf("HTTP_%d", resp.StatusCode),
			Message:    redact(snippet(data), secrets...),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), clock.Now()),
			auth:       true,
		}
		if resp.StatusCode == http.StatusOK {
			ae.Code, ae.Message = "INVALID_RESPONSE", "the accounts server sent an unreadable token response"
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return nil, ae
	}
	return &tr, nil
}

// ExchangeGrant trades a Self Client grant token (code) for a refresh token
// (grant_type=authorization_code). hc nil uses a default client. Refusals are
// *TokenError; the call honours ctx.
func ExchangeGrant(ctx context.Context, hc *http.Client, accountsURL, clientID, clientSecret, code string) (refreshToken string, err error) {
	accounts, err := baseURL("accounts_url", accountsURL)
	if err != nil {
		return "", err
	}
	if accounts == "" {
		return "", errors.New("zoho: accounts_url is empty: set zoho.accounts_url or zoho.data_center")
	}
	if hc == nil {
		hc = defaultHTTPClient()
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"code":          {code},
	}
	tr, err := postToken(ctx, hc, accounts, form, realClock{}, true, clientSecret, code)
	if err != nil {
		return "", err
	}
	if tr.RefreshToken == "" {
		return "", errors.New("zoho: the accounts server returned no refresh token: generate a new grant token and exchange it once")
	}
	return tr.RefreshToken, nil
}

// cacheFile is the on-disk token. It is keyed to the credentials so that changing
// the refresh token (or client) never reuses a token minted for the old one.
type cacheFile struct {
	ClientID    string    `json:"client_id"`
	RefreshHash string    `json:"refresh_token_sha256"`
	AccessToken string    `json:"access_token"`
	APIDomain   string    `json:"api_domain"`
	IssuedAt    time.Time `json:"issued_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func refreshHash(refresh string) string {
	sum := sha256.Sum256([]byte("crmdrop refresh token\x00" + refresh))
	return hex.EncodeToString(sum[:])
}

// loadCache adopts the cached token if it is for these credentials and still fresh.
// Any problem with the file only costs a mint: it is logged, never fatal.
func (c *Client) loadCache() {
	if c.cachePath == "" {
		return
	}
	data, err := os.ReadFile(c.cachePath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.log.Warn("cannot read token cache, ignoring it", "path", c.cachePath, "err", err)
		return
	}
	var cf cacheFile
	if err := json.Unmarshal(data, &cf); err != nil || cf.AccessToken == "" || cf.ExpiresAt.IsZero() {
		c.log.Warn("token cache is corrupt, ignoring it", "path", c.cachePath)
		return
	}
	if cf.ClientID != c.clientID || cf.RefreshHash != c.cacheKey {
		c.log.Info("token cache is for other credentials, ignoring it", "path", c.cachePath)
		return
	}
	t := token{access: cf.AccessToken, apiDomain: strings.TrimRight(cf.APIDomain, "/"), issued: cf.IssuedAt, expires: cf.ExpiresAt}
	if !t.fresh(c.clock.Now()) {
		c.log.Debug("cached token expired", "expired_at", cf.ExpiresAt)
		return
	}
	c.cur = t
	c.log.Debug("using cached token", "expires_at", cf.ExpiresAt)
}

// saveCache writes t for the next start. Failure is logged: it costs one mint later.
func (c *Client) saveCache(t token) {
	if c.cachePath == "" {
		return
	}
	data, err := json.Marshal(cacheFile{
		ClientID:    c.clientID,
		RefreshHash: c.cacheKey,
		AccessToken: t.access,
		APIDomain:   t.apiDomain,
		IssuedAt:    t.issued.UTC(),
		ExpiresAt:   t.expires.UTC(),
	})
	if err == nil {
		err = writeFileAtomic(c.cachePath, data)
	}
	if err != nil {
		c.log.Warn("cannot save token cache", "path", c.cachePath, "err", err)
	}
}

// writeFileAtomic replaces path with data, mode 0600, so that a crash leaves either
// the old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
