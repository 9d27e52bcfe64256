package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// shutdownGrace bounds a graceful stop: a stuck scrape must not hold up the daemon's exit.
	shutdownGrace = 5 * time.Second
	// fetchTimeout bounds `crmdrop status`: a daemon that does not answer in this time is
	// treated as down, and the command falls back to the ledger.
	fetchTimeout = 2 * time.Second
	// maxStatusBody caps what Fetch reads; a real Status is a few KiB.
	maxStatusBody = 4 << 20
	// entriesTimeout and maxEntriesBody bound FetchEntries: an entry is about 300 bytes
	// of JSON, so this allows for some 800,000 of them.
	entriesTimeout = 30 * time.Second
	maxEntriesBody = 256 << 20
)

// ErrUnreachable is wrapped by Fetch's errors when no daemon answered at the address:
// the caller (crmdrop status) can then read the ledger instead.
var ErrUnreachable = errors.New("crmdrop daemon not reachable")

// Serve listens on addr and serves h until ctx ends, then shuts down gracefully, waiting
// at most 5 s for requests under way (their connections are closed after that). If addr
// cannot be bound it returns at once with one line saying what to change in admin_listen.
// It returns nil after a stop caused by ctx, or the server's error if serving fails.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h, log)
}

// Listen binds addr (host:port; port 0 picks a free one) for ServeListener. Its errors
// are one line naming admin_listen and the fix.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		// net.Listen would bind every interface on a random port: never what was meant.
		return nil, errors.New(`admin_listen is empty, which turns the admin endpoint off; set it to host:port (e.g. 127.0.0.1:9477) to turn it on`)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fix := `set admin_listen to an address this machine can listen on (e.g. 127.0.0.1:9477), or "" to turn it off`
		if errors.Is(err, syscall.EADDRINUSE) {
			fix = `set admin_listen to a free port or "" to turn it off`
		}
		return nil, fmt.Errorf("admin_listen %s: %w; %s", addr, cause(err), fix)
	}
	return ln, nil
}

// cause strips the "listen tcp 127.0.0.1:9477: bind:" layers, which repeat what the
// message already says, and keeps the operating system's reason.
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) && sys.Err != nil {
		err = sys.Err
	}
	return err
}

// ServeListener serves h on ln until ctx ends, as Serve does; it closes ln when done.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	return serveListener(ctx, ln, h, log, shutdownGrace)
}

func serveListener(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, grace time.Duration) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("admin endpoint listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("admin endpoint %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// ctx is already done: the shutdown needs a deadline of its own.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("admin endpoint did not stop in time, closing connections", "wait", grace, "err", err)
		srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// Fetch gets the Status of the daemon whose admin_listen is addr, giving up after 2 s.
// An addr without a host or with an unspecified one (":9477", "0.0.0.0:9477") is reached
// over loopback. When nothing answers, the error wraps ErrUnreachable. Fetch sets
// Source to SourceDaemon when the daemon left it empty.
func Fetch(ctx context.Context, addr string) (Status, error) {
	return fetch(ctx, addr, fetchTimeout)
}

func fetch(ctx context.Context, addr string, timeout time.Duration) (Status, error) {
	body, host, err := getJSON(ctx, addr, "/api/status", timeout, maxStatusBody)
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return Status{}, fmt.Errorf("crmdrop daemon at %s sent a status that is not valid JSON (is another program using that port?): %w", host, err)
	}
	if st.Source == "" {
		st.Source = SourceDaemon
	}
	return st, nil
}

// FetchEntries gets ledger entries from the daemon whose admin_listen is addr (GET
// /api/entries): state "" means all, limit <= 0 means no limit. It reaches addr as
// Fetch does and, like it, wraps ErrUnreachable when nothing answers; it waits up to
// 30 s, as a big ledger takes a while to list. A daemon that answers but does not
// serve /api/entries gets an error saying so. The result is never nil on success.
func FetchEntries(ctx context.Context, addr, state string, limit int) ([]Entry, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/entries"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	body, host, err := getJSON(ctx, addr, path, entriesTimeout, maxEntriesBody)
	if err != nil {
		return nil, err
	}
	entries := []Entry{}
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("crmdrop daemon at %s sent entries that are not valid JSON (is another program using that port?): %w", host, err)
	}
	if entries == nil {
		entries = []Entry{}
	}
	return entries, nil
}

// getJSON fetches path from the daemon at the listen address addr and returns the body of
// a 200 answer and the host:port it dialled.
func getJSON(ctx context.Context, addr, path string, timeout time.Duration, maxBody int64) ([]byte, string, error) {
	if addr == "" {
		return nil, "", fmt.Errorf("%w: admin_listen is empty, so the daemon has no admin endpoint", ErrUnreachable)
	}
	host, err := dialAddr(addr)
	if err != nil {
		return nil, "", fmt.Errorf("admin_listen %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return nil, host, fmt.Errorf("admin_listen %q: %w", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	// Own transport: no proxy from the environment (a proxy would "answer" for a daemon
	// that is down), and no idle connection left behind by a one-shot command.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, host, fmt.Errorf("%w at %s: %w", ErrUnreachable, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, host, fmt.Errorf("%w at %s: reading the answer: %w", ErrUnreachable, host, err)
	}
	if int64(len(body)) > maxBody {
		return nil, host, fmt.Errorf("crmdrop daemon at %s sent more than %d MiB for %s", host, maxBody>>20, path)
	}
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/entries") {
		return nil, host, fmt.Errorf("crmdrop daemon at %s does not serve /api/entries (an older crmdrop?); upgrade it, or stop it and run the command again to read the ledger", host)
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return nil, host, fmt.Errorf("crmdrop daemon at %s answered %s: %s", host, resp.Status, line)
	}
	return body, host, nil
}

// dialAddr turns a listen address into one to connect to: a wildcard host means "this
// machine", which loopback always reaches.
func dialAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	switch {
	case host == "":
		host = "127.0.0.1"
	default:
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			host = "127.0.0.1"
			if ip.Is6() {
				host = "::1"
			}
		}
	}
	return net.JoinHostPort(host, port), nil
}

// IsLoopback reports whether the listen address addr (host:port) binds only loopback:
// a loopback IP ("127.0.0.1:9477", "[::1]:9477") or the name localhost. An empty or
// wildcard host, any other name or IP, and a malformed addr are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}
