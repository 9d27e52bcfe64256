// Package zohotest is an in-process fake of Zoho's accounts server (OAuth token
// endpoint) and of the CRM Attachments API, as net/http/httptest is to net/http.
//
// It speaks HTTP only, on loopback, so the same fake serves unit tests, the
// crash test (where the daemon runs as a separate process) and `crmdrop demo`.
// It answers with Zoho's status codes and JSON shapes (SPEC §2), streams
// uploads without holding them in memory, and can inject the faults a real
// network and a real Zoho produce: 5xx before or after storing, 429, resets,
// hangs, expired tokens, a mint lockout, a scope mismatch.
//
// Endpoints, all under URL():
//
//	POST   /oauth/v2/token                               refresh_token and authorization_code grants
//	POST   /crm/{v2…v8}/{Module}/{record}/Attachments     a file (field "file") or a link ("attachmentUrl", "title")
//	GET    /crm/{v2…v8}/{Module}/{record}/Attachments     page, per_page (at most 200); fields required from v3
//	DELETE /crm/{v2…v8}/{Module}/{record}/Attachments/{id}
//	GET    /crm/{v2…v8}/{Module}                         record ids (those with attachments); fields required from v3
//
// An upload is stored once its whole body has arrived, before any latency
// and before the answer: a client that gives up after sending the body may
// have attached the file (the ambiguous case the uploader must reconcile).
// Listings give attachments in the order stored; with fields, an item has
// those fields, "id" and the "$" meta fields ($link_url, $file_id, …). Error
// bodies are always the top-level form
// {"code":"…","details":{…},"message":"…","status":"error"}.
package zohotest

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value works: every field has a default.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// ClientID, ClientSecret and RefreshToken are the credentials the token
	// endpoint accepts. Defaults "test-client-id", "test-client-secret",
	// "1000.test-refresh-token".
	ClientID, ClientSecret, RefreshToken string
	// GrantCodes are one-time authorization codes accepted by
	// grant_type=authorization_code; each returns RefreshToken.
	GrantCodes []string
	// TokenLifetime is how long an access token is valid; default 1h.
	TokenLifetime time.Duration
	// LegacyExpiresIn answers expires_in in milliseconds plus expires_in_sec,
	// as old accounts servers did.
	LegacyExpiresIn bool
	// MintLimit is how many access tokens one refresh token may mint within
	// MintWindow before the accounts server answers "Access Denied"; default
	// 10, negative means unlimited.
	MintLimit int
	// MintWindow is the sliding window of MintLimit; default 10m.
	MintWindow time.Duration
	// MaxFileSize is the largest accepted file; default 100 MiB. Larger files
	// get FILE_SIZE_MORE_THAN_ALLOWED_SIZE.
	MaxFileSize int64
	// Latency is added to each upload after its body is read, before the
	// answer. SetLatency changes it later.
	Latency time.Duration
	// MaxConcurrent caps the uploads in progress; one more gets 429
	// TOO_MANY_REQUESTS. 0 means no cap.
	MaxConcurrent int
	// Now is the clock for Created_Time, token expiry and mint windows;
	// default time.Now.
	Now func() time.Time
	// Logf, if set, receives one line per notable event. Secrets are never
	// passed to it.
	Logf func(format string, args ...any)
	// OnRequest, if set, is called as each request arrives (its headers
	// read, its body not yet), with the request's method and URL path and
	// the arrival time by the real clock (not Now): benchmarks time pickup
	// and transfers with it. It may be called from several goroutines at
	// once and must not block; it must not call the Server's methods.
	OnRequest func(method, path string, at time.Time)
}

// Attachment is one attachment the fake stores.
type Attachment struct {
	ID       string // 19-digit attachment id, as in details.id
	Module   string // module API name, e.g. "Leads"
	RecordID string
	FileName string    // the file's name; for a link, its title (or the URL when untitled)
	Size     int64     // bytes received; 0 for a link
	SHA256   string    // hex digest of the file; "" for a link
	Link     string    // the attachmentUrl for a link; "" for a file
	Created  time.Time // when stored, by Options.Now, in UTC to the second (as Created_Time says)
}

// Counts are the requests the fake has seen, whatever their outcome.
type Counts struct {
	Tokens   int // requests to /oauth/v2/token
	Uploads  int // POST …/Attachments
	Lists    int // GET …/Attachments
	Deletes  int // DELETE …/Attachments/{id}
	Records  int // GET /crm/{version}/{Module} (record listings: zoho.Client.Ping)
	Rejected int // requests refused for what they carried: credentials, validation, limits (not injected faults)
	Faults   int // uploads that got an injected Fault
}

// Fault is a failure injected into one upload. The fault is chosen when the
// upload arrives (after its token, module and record are checked), so the
// order in which uploads arrive decides which one gets it.
type Fault int

const (
	// FaultNone lets the upload through.
	FaultNone Fault = iota
	// Fault500Before answers 500 INTERNAL_ERROR; nothing is stored.
	Fault500Before
	// Fault500After stores the upload, then answers 500 INTERNAL_ERROR.
	Fault500After
	// Fault429 answers 429 TOO_MANY_REQUESTS with Retry-After; nothing is stored.
	Fault429
	// FaultReset reads part of the body, then resets the connection; nothing
	// is stored.
	FaultReset
	// FaultResetAfter stores the upload, then resets the connection before
	// answering.
	FaultResetAfter
	// FaultTimeout stores the upload, then never answers, until the client
	// gives up (closes the connection) or the server is closed.
	FaultTimeout
)

// String names the fault, for logs and subtest names.
func (f Fault) String() string {
	names := [...]string{"none", "500-before", "500-after", "429", "reset", "reset-after", "timeout"}
	if f >= 0 && int(f) < len(names) {
		return names[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// FaultRates are per-upload probabilities of each fault, in [0,1]; their sum
// should not exceed 1. Uploads queued by FailNext are served first.
type FaultRates struct {
	Before500  float64 // Fault500Before
	After500   float64 // Fault500After
	TooMany    float64 // Fault429
	Reset      float64 // FaultReset
	ResetAfter float64 // FaultResetAfter
}

// Server is a running fake Zoho. All its methods are safe for concurrent use,
// also while requests are being served.
type Server struct {
	opts   Options
	url    string
	srv    *http.Server
	done   chan struct{} // closed by Close: wakes handlers that wait
	served chan struct{} // closed when Serve has returned
	once   sync.Once
	active sync.WaitGroup // handlers running

	mu            sync.Mutex
	closed        bool
	counts        Counts
	refreshTokens map[string]bool
	grantCodes    map[string]bool
	mints         map[string][]time.Time // refresh token -> mint times in the window
	tokens        map[string]*accessToken
	tokenList     []string
	minted        []time.Time
	modules       map[string]bool
	invalid       map[string]bool // module + "/" + record
	atts          []Attachment
	nextID        uint64
	queue         []faultRun
	rates         FaultRates
	rng           *rand.Rand
	retryAfter    time.Duration
	scopeMismatch bool
	latency       time.Duration
	inFlight      int
	onUpload      func(Attachment)
}

type accessToken struct {
	expires time.Time
	revoked bool
}

type faultRun struct {
	n int
	f Fault
}

// firstID is where attachment ids start: 19 digits, above 2^53, like Zoho's.
const firstID = 3477061000010000001

// New starts a fake Zoho listening on opts.Addr. Close it when done.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.RefreshToken == "" {
		opts.RefreshToken = DefaultRefreshToken
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.MintLimit == 0 {
		opts.MintLimit = 10
	}
	if opts.MintWindow <= 0 {
		opts.MintWindow = 10 * time.Minute
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = 100 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("zohotest: listen on %s: %w", opts.Addr, err)
	}
	s := &Server{
		opts:          opts,
		url:           "http://" + ln.Addr().String(),
		done:          make(chan struct{}),
		served:        make(chan struct{}),
		refreshTokens: map[string]bool{opts.RefreshToken: true},
		grantCodes:    map[string]bool{},
		mints:         map[string][]time.Time{},
		tokens:        map[string]*accessToken{},
		modules:       map[string]bool{},
		invalid:       map[string]bool{},
		nextID:        firstID,
		retryAfter:    time.Second,
		latency:       opts.Latency,
	}
	for _, c := range opts.GrantCodes {
		s.grantCodes[c] = true
	}
	// The standard modules of SPEC §1, by API name.
	for _, m := range []string{
		"Leads", "Accounts", "Contacts", "Deals", "Campaigns", "Tasks", "Cases",
		"Events", "Calls", "Solutions", "Products", "Vendors", "Price_Books",
		"Quotes", "Sales_Orders", "Purchase_Orders", "Invoices", "Notes",
		"Appointments__s", "Services__s",
	} {
		s.modules[m] = true
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		// The server's own complaints (client went away mid-body, …) are
		// expected under fault injection; they are noise, not events.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// TB is the part of testing.TB that NewServer needs. It is declared here so that the
// fake, which `crmdrop demo` also serves, does not link package testing into the binary.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatal(args ...any)
	Cleanup(func())
}

// NewServer is New for tests: it fails tb on error and closes the server in
// tb.Cleanup. If opts.Logf is nil, events go to tb.Logf.
func NewServer(tb TB, opts Options) *Server {
	tb.Helper()
	if opts.Logf == nil {
		opts.Logf = tb.Logf
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL, without a trailing slash. It serves both the accounts
// paths (/oauth/v2/token) and the CRM paths (/crm/{version}/…), so it is both
// accounts_url and api_domain.
func (s *Server) URL() string { return s.url }

// Close stops the server: it closes the listener and every connection, wakes
// every waiting handler (whose clients see a broken connection, never an
// answer), and returns once all handlers have returned. It is
// safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		_ = s.srv.Close()
		s.active.Wait()
		<-s.served
	})
}

// Uploads returns every attachment stored, in the order stored (deleted ones
// are gone).
func (s *Server) Uploads() []Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attachment(nil), s.atts...)
}

// Minted returns when each access token was minted, in order.
func (s *Server) Minted() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.minted...)
}

// Tokens returns every access token minted, in order, so tests can check
// that none of them leaked into logs or files.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokenList...)
}

// Requests returns the requests seen so far.
func (s *Server) Requests() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// InFlight returns how many uploads are in progress now: admitted, and not
// yet answered or abandoned.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// FailNext makes the next n uploads get f, after any queued before.
func (s *Server) FailNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, faultRun{n: n, f: f})
}

// SetFaultRates injects faults at random into uploads that FailNext did not
// claim. The same seed gives the same sequence of draws. A zero FaultRates
// turns random faults off.
func (s *Server) SetFaultRates(r FaultRates, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rates = r
	s.rng = nil
	if r != (FaultRates{}) {
		s.rng = rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	}
}

// SetRetryAfter sets the wait every 429 asks for (default 1s). The header is
// in whole seconds, rounded up, at least 1.
func (s *Server) SetRetryAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = d
}

// SetScopeMismatch makes every CRM call answer 401 OAUTH_SCOPE_MISMATCH while on.
func (s *Server) SetScopeMismatch(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopeMismatch = on
}

// SetLatency sets the delay added to each upload from now on.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// ExpireTokens invalidates every access token issued so far: they answer 401
// INVALID_TOKEN. Tokens minted afterwards work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// RevokeRefreshToken makes the accounts server refuse refresh token rt with
// invalid_code from now on. Access tokens already minted keep working.
func (s *Server) RevokeRefreshToken(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refreshTokens, rt)
}

// InvalidRecord makes record recordID of module answer 400 INVALID_DATA
// ("the related id given seems to be invalid"), as a deleted record does.
func (s *Server) InvalidRecord(module, recordID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalid[module+"/"+recordID] = true
}

// ValidRecord undoes InvalidRecord: the record exists again.
func (s *Server) ValidRecord(module, recordID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.invalid, module+"/"+recordID)
}

// The credentials a Server accepts unless Options say otherwise.
const (
	DefaultClientID     = "test-client-id"
	DefaultClientSecret = "test-client-secret"
	DefaultRefreshToken = "1000.test-refresh-token"
)

// AddModule registers a custom module API name (matched with exact case).
func (s *Server) AddModule(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modules[name] = true
}

// OnUpload sets a hook called after each attachment is stored (also for
// Fault500After, FaultResetAfter and FaultTimeout), before the answer is
// sent. It may be called from several goroutines at once; it may call the
// Server's methods. nil removes it.
func (s *Server) OnUpload(fn func(Attachment)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onUpload = fn
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("zohotest: "+format, args...)
	}
}

// serveHTTP tracks handlers so that Close can wait for them: a handler that
// logs through t.Logf after its test ended would panic.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(r.Method, r.URL.Path, time.Now())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.active.Add(1)
	s.mu.Unlock()
	defer s.active.Done()

	switch {
	case r.URL.Path == "/oauth/v2/token":
		s.token(w, r)
	case strings.HasPrefix(r.URL.Path, "/crm/"):
		s.crm(w, r)
	default:
		s.reject()
		writeError(w, errURLPattern())
	}
}

// wait sleeps for d, or until the request is abandoned or the server closes;
// it reports whether the full d elapsed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}
