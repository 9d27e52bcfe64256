// Package zoho is crmdrop's client for the Zoho CRM Attachments API: one OAuth
// access token shared by every caller (minted single-flight, cached on disk across
// restarts), streamed file uploads, link uploads, attachment listing, and Classify,
// which turns any error it returns into what the caller may do next.
package zoho

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source for token expiry and Retry-After dates.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configures a Client. Only AccountsURL and the three credentials are
// required; every other zero value has a working default.
type Options struct {
	AccountsURL      string // e.g. https://accounts.zoho.com (required)
	APIDomain        string // explicit override: when set, wins over the token's api_domain
	DefaultAPIDomain string // used when neither APIDomain nor the token response gives one
	APIVersion       string // default "v2"

	ClientID, ClientSecret, RefreshToken string

	// TokenCache is the file that keeps the access token across restarts ("" = none).
	// It is written 0600, atomically, and ignored when unreadable or for other credentials.
	TokenCache string
	// HTTPClient defaults to one with dial, TLS and response-header timeouts but no
	// overall timeout (which would cut a large upload); bound requests with ctx.
	HTTPClient *http.Client
	Clock      Clock
	Logger     *slog.Logger

	// OnMint, when set, is called after each access token is minted (for metrics).
	OnMint func()
}

// Client talks to one Zoho CRM org. It is safe for concurrent use; all goroutines
// share one access token.
type Client struct {
	hc        *http.Client
	clock     Clock
	log       *slog.Logger
	accounts  string
	apiDomain string
	defDomain string
	version   string
	clientID  string
	secret    string
	refresh   string
	cachePath string
	cacheKey  string

	sem chan struct{} // held by the one goroutine minting a token

	mu        sync.Mutex
	cur       token
	failSeq   uint64 // bumped by every failed mint, so waiters on it do not mint again
	failErr   error
	failAt    time.Time // last failed mint
	lockUntil time.Time // accounts' Access Denied window
	lockErr   *TokenError

	minted atomic.Int64
	onMint func()
}

// New checks opts and returns a Client. It makes no network call; it loads a
// still-valid token from opts.TokenCache, so a restart does not mint a new one.
func New(opts Options) (*Client, error) {
	accounts, err := baseURL("accounts_url", opts.AccountsURL)
	if err != nil {
		return nil, err
	}
	if accounts == "" {
		return nil, errors.New("zoho: accounts_url is empty: set zoho.accounts_url or zoho.data_center")
	}
	apiDomain, err := baseURL("api_domain", opts.APIDomain)
	if err != nil {
		return nil, err
	}
	defDomain, err := baseURL("default api_domain", opts.DefaultAPIDomain)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{
		{"client_id", opts.ClientID}, {"client_secret", opts.ClientSecret}, {"refresh_token", opts.RefreshToken},
	} {
		if strings.TrimSpace(f.v) == "" {
			return nil, fmt.Errorf("zoho: %s is empty: set zoho.%s in the configuration", f.name, f.name)
		}
	}
	c := &Client{
		hc:        opts.HTTPClient,
		clock:     opts.Clock,
		log:       opts.Logger,
		accounts:  accounts,
		apiDomain: apiDomain,
		defDomain: defDomain,
		version:   opts.APIVersion,
		clientID:  opts.ClientID,
		secret:    opts.ClientSecret,
		refresh:   opts.RefreshToken,
		cachePath: opts.TokenCache,
		cacheKey:  refreshHash(opts.RefreshToken),
		sem:       make(chan struct{}, 1),
		onMint:    opts.OnMint,
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.version == "" {
		c.version = "v2"
	}
	c.loadCache()
	return c, nil
}

func baseURL(name, s string) (string, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("zoho: %s %q is not an http(s) URL: write it like https://accounts.zoho.com", name, s)
	}
	return s, nil
}

// defaultHTTPClient bounds each phase that can hang on a dead peer, but not the
// request as a whole: a 100 MiB upload on a slow line legitimately takes long.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   32,
			ForceAttemptHTTP2:     true,
		},
		// Zoho does not redirect API calls; following one would turn an upload into a
		// GET (301/302) or drop the Authorization header (other host). Surface it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Minted reports how many access tokens this Client has minted. Safe for concurrent use.
func (c *Client) Minted() int { return int(c.minted.Load()) }

// Token returns a valid access token, minting one if needed (single-flight: concurrent
// callers wait for the one mint, or return ctx.Err() when ctx ends first). For `check`.
func (c *Client) Token(ctx context.Context) (string, error) {
	t, err := c.token(ctx)
	if err != nil {
		return "", err
	}
	return t.access, nil
}

func (c *Client) apiBase(t token) (string, error) {
	switch {
	case c.apiDomain != "":
		return c.apiDomain, nil
	case t.apiDomain != "":
		return t.apiDomain, nil
	case c.defDomain != "":
		return c.defDomain, nil
	}
	return "", &localError{class: Global, msg: "zoho: no API domain known: the token response named none; set zoho.api_domain or zoho.data_center"}
}

// reqBody is one attempt's request body.
type reqBody struct {
	r           io.ReadCloser
	length      int64
	contentType string
	// finish stops the body's producer, waits for it, and returns an error from the
	// local source (the file) if there was one; nil for in-memory bodies.
	finish func(ctx context.Context) error
}

// response is an API response read whole (API responses are small JSON).
type response struct {
	status int
	header http.Header
	body   []byte
	token  string // the access token the request carried, for redaction
}

const maxResponse = 8 << 20

// do sends one API call, refreshing the token and retrying exactly once when Zoho
// says the token is invalid. newBody (nil for none) is called once per attempt.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, newBody func() (*reqBody, error)) (*response, error) {
	for attempt := 0; ; attempt++ {
		t, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		base, err := c.apiBase(t)
		if err != nil {
			return nil, err
		}
		u := base + path
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		var rb *reqBody
		if newBody != nil {
			if rb, err = newBody(); err != nil {
				return nil, err
			}
		}
		res, err := c.send(ctx, op, method, u, t.access, rb)
		if err != nil {
			return nil, err
		}
		if res.status == http.StatusUnauthorized && attempt == 0 {
			if code := c.apiError(res).Code; code == "INVALID_TOKEN" || code == "AUTHENTICATION_FAILURE" {
				c.log.Info("zoho token rejected, refreshing", "code", code)
				c.invalidate(t.access)
				continue
			}
		}
		return res, nil
	}
}

func (c *Client) send(ctx context.Context, op, method, u, access string, rb *reqBody) (*response, error) {
	var body io.Reader
	if rb != nil {
		body = rb.r
	}
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, u, body)
	if err != nil {
		if rb != nil {
			rb.r.Close()
			rb.finish(ctx)
		}
		return nil, &localError{class: Permanent, msg: "zoho: " + op + ": " + err.Error()}
	}
	if rb != nil {
		req.ContentLength = rb.length
		req.Header.Set("Content-Type", rb.contentType)
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+access)
	req.Header.Set("Accept", "application/json")
	start := c.clock.Now()
	resp, err := c.hc.Do(req)
	var local error
	if rb != nil {
		local = rb.finish(ctx)
	}
	if err != nil {
		if local != nil {
			return nil, local
		}
		return nil, &NetError{Op: op, Sent: sent.Load(), Err: c.scrub(innerErr(err), access)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, &NetError{Op: op, Sent: true, Err: c.scrub(innerErr(err), access)}
	}
	if len(data) > maxResponse {
		return nil, &NetError{Op: op, Sent: true, Err: fmt.Errorf("response larger than %d bytes", maxResponse)}
	}
	c.log.Debug("zoho request", "op", op, "method", method, "status", resp.StatusCode, "took", c.clock.Now().Sub(start))
	if local != nil && resp.StatusCode/100 != 2 {
		// The file failed under us and the server refused the truncated body: the
		// file's problem is the one to report.
		return nil, local
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data, token: access}, nil
}

// innerErr drops *url.Error's "Post \"https://…\":" prefix; Op says what failed.
func innerErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// scrub makes sure no secret survives in an error's text, whatever echoed it.
func (c *Client) scrub(err error, extra ...string) error {
	return scrubErr(err, append([]string{c.secret, c.refresh}, extra...))
}

func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	if s := err.Error(); redact(s, secrets...) != s {
		return &redactedError{msg: redact(s, secrets...), err: err}
	}
	return err
}

// redactedError shows a scrubbed text but keeps the chain for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (c *Client) redact(s string, extra ...string) string {
	return redact(s, append([]string{c.secret, c.refresh}, extra...)...)
}

func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// apiError turns a non-success response into an *APIError: Zoho puts the code in
// data[0] for record-level failures and at the top level for request-level ones.
func (c *Client) apiError(res *response) *APIError {
	var b struct {
		Data []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"data"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	jsonErr := json.Unmarshal(res.body, &b)
	code, msg := b.Code, b.Message
	if len(b.Data) > 0 && b.Data[0].Code != "" && (code == "" || b.Data[0].Status == "error") {
		code, msg = b.Data[0].Code, b.Data[0].Message
	}
	if code == "SUCCESS" { // a success we could not use (no id, odd status)
		code = ""
	}
	if code == "" {
		switch {
		case res.status == http.StatusTooManyRequests:
			code = "TOO_MANY_REQUESTS"
		case res.status/100 == 2:
			code = "INVALID_RESPONSE"
		default:
			code = fmt.Sprintf("HTTP_%d", res.status)
		}
	}
	if msg == "" {
		if jsonErr != nil {
			msg = snippet(res.body)
		}
		if msg == "" {
			msg = http.StatusText(res.status)
		}
		if loc := res.header.Get("Location"); loc != "" && res.status/100 == 3 {
			msg += " (redirect to " + loc + ")"
		}
	}
	return &APIError{
		Status:     res.status,
		Code:       code,
		Message:    c.redact(msg, res.token),
		RetryAfter: parseRetryAfter(res.header.Get("Retry-After"), c.clock.Now()),
	}
}

// snippet is a non-JSON body (an HTML error page) cut to one short line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
