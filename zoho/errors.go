package zoho

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is a refusal from Zoho CRM (or a non-200 answer from the accounts
// server): the HTTP status, Zoho's code ("INVALID_DATA", "TOO_MANY_REQUESTS",
// "HTTP_503" when the body named none), its message, and the server's Retry-After.
// Message never contains a secret.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration

	auth bool // from the accounts server: no CRM request was made
}

// Error is "zoho: CODE (HTTP n): message".
func (e *APIError) Error() string {
	if e.auth {
		return fmt.Sprintf("zoho: token refresh: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
	}
	return fmt.Sprintf("zoho: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// TokenError is the accounts server refusing to mint a token: "invalid_code" (the
// refresh or grant token is revoked, wrong or used), "invalid_client" (wrong client
// or wrong data center), or "Access Denied" (more than 10 tokens minted in 10
// minutes; RetryAfter says when the lockout ends).
type TokenError struct {
	Code, Description string
	RetryAfter        time.Duration

	grant bool // from ExchangeGrant: the code is a grant token, not the refresh token
}

// accessDeniedWait is Zoho's token-mint lockout window.
const accessDeniedWait = 10 * time.Minute

func (e *TokenError) lockout() bool { return strings.EqualFold(e.Code, "Access Denied") }

// Error is one line saying what is wrong and what to do about it.
func (e *TokenError) Error() string {
	switch {
	case e.Code == "invalid_code" && e.grant:
		return "zoho: grant token rejected (invalid_code): it is wrong, already used or expired (they last minutes); generate a new one and try again"
	case e.Code == "invalid_code":
		return "zoho: refresh token rejected (invalid_code): it was revoked or is wrong; get a new one with `crmdrop auth --grant-token`"
	case e.Code == "invalid_client":
		return "zoho: client rejected (invalid_client): check client_id and client_secret, and that the data center (accounts_url) is the one the client was created in"
	case e.lockout():
		return fmt.Sprintf("zoho: token refresh locked out (Access Denied): too many tokens minted for this refresh token; try again in %s", e.RetryAfter.Round(time.Second))
	case e.Description != "":
		return fmt.Sprintf("zoho: token refresh refused (%s): %s", e.Code, e.Description)
	}
	return fmt.Sprintf("zoho: token refresh refused (%s)", e.Code)
}

// NetError is a transport failure: no HTTP response was read. Sent reports whether
// the request's headers were written, so the server may have acted on it (for a
// token request Sent is always false: a lost mint leaves nothing to reconcile).
type NetError struct {
	Op   string
	Sent bool
	Err  error
}

// Error names the operation and the transport's error, and says when the request
// may have been stored.
func (e *NetError) Error() string {
	if e.Sent {
		return fmt.Sprintf("zoho: %s: %v (after the request was sent: it may have been stored)", e.Op, e.Err)
	}
	return fmt.Sprintf("zoho: %s: %v", e.Op, e.Err)
}

// Unwrap gives the transport's error (context.DeadlineExceeded, *net.OpError, …).
func (e *NetError) Unwrap() error { return e.Err }

// localError is a failure decided before or without Zoho: a bad argument, missing
// configuration. Its class is fixed where it is made.
type localError struct {
	class Class
	msg   string
}

func (e *localError) Error() string { return e.msg }

// IsLinkExists reports whether err is Zoho refusing a link the record already has.
// After an ambiguous attempt to attach that link, it means the link is there.
func IsLinkExists(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.auth {
		return false
	}
	return ae.Code == "DUPLICATE_DATA" || strings.Contains(strings.ToLower(ae.Message), "already exists")
}

// Class says what a failed call allows the caller to do next.
type Class int

const (
	// Transient: nothing was stored; retry after a backoff (at least the hint).
	Transient Class = iota
	// Ambiguous: the request may have been stored; list the record before sending again.
	Ambiguous
	// Permanent: this file or link can never succeed as it is.
	Permanent
	// Global: nothing can succeed until an admin acts (or, with a hint, until it passes).
	Global
)

// String is the class's lowercase name, for logs.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Ambiguous:
		return "ambiguous"
	case Permanent:
		return "permanent"
	case Global:
		return "global"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Classify maps an error from this package to its class and a wait hint (the
// server's Retry-After, the token lockout; 0 when none). It is the only place that
// decides; a nil error is Transient with no hint. Unknown 4xx refusals are Permanent
// (the message goes to the user), 401/403 without a known code Global, anything
// unrecognised Transient.
func Classify(err error) (Class, time.Duration) {
	if err == nil {
		return Transient, 0
	}
	// The caller is stopping; what it sent is reconciled from the ledger at the next start.
	if errors.Is(err, context.Canceled) {
		return Transient, 0
	}
	var te *TokenError
	if errors.As(err, &te) {
		if te.lockout() && te.RetryAfter <= 0 {
			return Global, accessDeniedWait
		}
		return Global, te.RetryAfter
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.throttled() && ae.RetryAfter <= 0 {
			// A 429 must slow every worker even when the server names no wait.
			return Transient, defaultThrottleWait
		}
		return ae.class(), ae.RetryAfter
	}
	var ne *NetError
	if errors.As(err, &ne) {
		if ne.Sent {
			return Ambiguous, 0
		}
		return Transient, 0
	}
	var le *localError
	if errors.As(err, &le) {
		return le.class, 0
	}
	return Transient, 0
}

// defaultThrottleWait is the pause after a 429 that carries no Retry-After.
const defaultThrottleWait = time.Second

func (e *APIError) throttled() bool {
	return !e.auth && (e.Status == http.StatusTooManyRequests || e.Code == "TOO_MANY_REQUESTS")
}

func (e *APIError) class() Class {
	if e.auth {
		return Transient // the accounts server failing says nothing about the file
	}
	switch e.Code {
	case "INVALID_DATA", "FILE_SIZE_MORE_THAN_ALLOWED_SIZE", "INVALID_MODULE", "INVALID_URL_PATTERN":
		return Permanent
	case "OAUTH_SCOPE_MISMATCH", "NO_PERMISSION", "AUTHORIZATION_FAILED":
		return Global
	case "INVALID_TOKEN", "AUTHENTICATION_FAILURE":
		// Left after the one refresh-and-retry, so a freshly minted token was refused too
		// (typically api_domain pointing at another data center). Retrying would mint a
		// token per round and lock the refresh token out for everyone; block instead.
		return Global
	case "TOO_MANY_REQUESTS":
		return Transient
	case "INTERNAL_ERROR":
		return Ambiguous
	}
	switch s := e.Status; {
	case s == http.StatusTooManyRequests, s == http.StatusRequestTimeout:
		return Transient
	case s >= 500:
		return Ambiguous
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return Global
	case s >= 400:
		return Permanent
	case s/100 == 2:
		return Ambiguous // a 2xx we could not read: the server may well have stored it
	case s/100 == 3:
		return Global // a redirect: wrong data center or URL; retrying cannot fix it
	}
	return Transient
}

// maxRetryAfter caps a server's hint so a garbled header cannot stall us for days.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (relative to now). Anything unreadable or in the past is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}
