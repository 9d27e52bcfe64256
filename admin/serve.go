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
	"os"
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
	if addr == "" {
		return Status{}, fmt.Errorf("%w: admin_listen is empty, so the daemon has no admin endpoint", ErrUnreachable)
	}
	host, err := dialAddr(addr)
	if err != nil {
		return Status{}, fmt.Errorf("admin_listen %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/api/status", nil)
	if err != nil {
		return Status{}, fmt.Errorf("admin_listen %q: %w", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	// Own transport: no proxy from the environment (a proxy would "answer" for a daemon
	// that is down), and no idle connection left behind by a one-shot command.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("%w at %s: %w", ErrUnreachable, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return Status{}, fmt.Errorf("%w at %s: reading the answer: %w", ErrUnreachable, host, err)
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return Status{}, fmt.Errorf("crmdrop daemon at %s answered %s: %s", host, resp.Status, line)
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
