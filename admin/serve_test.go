package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// within fails the test unless a value arrives on c before d passes.
func within[T any](t *testing.T, c <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
		panic("unreachable")
	}
}

// start serves h on a loopback port until the test ends (or cancel is called) and
// returns the address and the channel ServeListener's result arrives on.
func start(t *testing.T, h http.Handler, grace time.Duration) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		errc <- serveListener(ctx, ln, h, nil, grace)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		within(t, stopped, 10*time.Second, "serve stop at cleanup")
	})
	return ln.Addr().String(), cancel, errc
}

func TestServeFetchRoundTrip(t *testing.T) {
	src := &fakeSource{}
	want := runningStatus()
	want.Version, want.StartedAt = "1.2.3", t0
	src.set(want, nil)
	addr, _, _ := start(t, NewHandler(src, nil), shutdownGrace)

	got, err := Fetch(t.Context(), addr)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", addr, err)
	}
	want = want.normalized()
	want.Source = SourceDaemon // filled in by Fetch
	if !statusEqual(got, want) {
		t.Errorf("Fetch = %+v, want %+v", got, want)
	}

	// The wildcard form of admin_listen reaches the same daemon over loopback.
	_, port, _ := net.SplitHostPort(addr)
	for _, a := range []string{":" + port, "0.0.0.0:" + port} {
		if got, err := Fetch(t.Context(), a); err != nil || got.State != StateRunning {
			t.Errorf("Fetch(%q) = %q, %v, want running", a, got.State, err)
		}
	}

	// Blocked still answers 200 with the reason.
	src.set(Status{State: StateBlocked, BlockedReason: "inbox missing", Source: SourceDaemon}, nil)
	got, err = Fetch(t.Context(), addr)
	if err != nil || got.State != StateBlocked || got.BlockedReason != "inbox missing" {
		t.Errorf("Fetch blocked = %+v, %v", got, err)
	}
}

func TestFetchErrors(t *testing.T) {
	// A port nothing listens on: bind one, then free it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	src := &fakeSource{}
	src.set(Status{}, errors.New("ledger: timeout"))
	broken, _, _ := start(t, NewHandler(src, nil), shutdownGrace)

	notJSON, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}), shutdownGrace)

	tests := []struct {
		name, addr      string
		wantUnreachable bool
		wantMsg         string
	}{
		{"nothing listening", dead, true, "crmdrop daemon not reachable at " + dead},
		{"admin off", "", true, "admin_listen is empty"},
		{"malformed", "localhost", false, `admin_listen "localhost"`},
		{"daemon error", broken, false, "answered 500 Internal Server Error: status unavailable: ledger: timeout"},
		{"not crmdrop", notJSON, false, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fetch(t.Context(), tt.addr)
			if err == nil {
				t.Fatalf("Fetch(%q) = nil error", tt.addr)
			}
			if errors.Is(err, ErrUnreachable) != tt.wantUnreachable {
				t.Errorf("Fetch(%q) = %v; errors.Is(ErrUnreachable) = %v, want %v", tt.addr, err, !tt.wantUnreachable, tt.wantUnreachable)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Fetch(%q) = %q, want it to contain %q", tt.addr, err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Fetch(%q) error has several lines: %q", tt.addr, err)
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), 50*time.Millisecond)

	errc := make(chan error, 1)
	go func() {
		_, err := fetch(t.Context(), hung, 100*time.Millisecond)
		errc <- err
	}()
	err := within(t, errc, 5*time.Second, "fetch from a hung daemon")
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fetch from a hung daemon = %v, want ErrUnreachable and DeadlineExceeded", err)
	}
}

func TestServeAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()

	errc := make(chan error, 1)
	go func() { errc <- Serve(t.Context(), addr, http.NotFoundHandler(), nil) }()
	err = within(t, errc, 5*time.Second, "Serve on a busy port")
	if err == nil {
		t.Fatal("Serve on a busy port = nil")
	}
	want := "admin_listen " + addr + ": "
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), `or "" to turn it off`) {
		t.Errorf("Serve error = %q, want %q… ending with how to turn it off", err, want)
	}
	if runtime.GOOS == "linux" {
		wantLinux := "admin_listen " + addr + `: address already in use; set admin_listen to a free port or "" to turn it off`
		if err.Error() != wantLinux {
			t.Errorf("Serve error = %q, want %q", err, wantLinux)
		}
	}
}

func TestListenErrors(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "127.0.0.1:99999"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := Listen(addr)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) = nil error", addr)
			}
			if !strings.Contains(err.Error(), "admin_listen") || !strings.Contains(err.Error(), "turn it") {
				t.Errorf("Listen(%q) = %q, want it to name admin_listen and the fix", addr, err)
			}
		})
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, "127.0.0.1:0", http.NotFoundHandler(), nil) }()
	cancel()
	if err := within(t, errc, 10*time.Second, "Serve after cancel"); err != nil {
		t.Errorf("Serve after cancel = %v, want nil", err)
	}
}

func TestServeListenerStopsServing(t *testing.T) {
	src := &fakeSource{}
	src.set(runningStatus(), nil)
	addr, cancel, done := start(t, NewHandler(src, nil), shutdownGrace)
	if _, err := Fetch(t.Context(), addr); err != nil {
		t.Fatalf("Fetch before cancel: %v", err)
	}
	cancel()
	if err := within(t, done, 10*time.Second, "ServeListener after cancel"); err != nil {
		t.Errorf("ServeListener after cancel = %v, want nil", err)
	}
	if _, err := Fetch(t.Context(), addr); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Fetch after stop = %v, want ErrUnreachable", err)
	}
}

func TestShutdownBounded(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	// A handler that ignores cancellation: only the bound can end the shutdown.
	addr, cancel, done := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), 50*time.Millisecond)

	reqDone := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		reqDone <- err
	}()
	within(t, entered, 5*time.Second, "request reaching the handler")
	cancel()
	if err := within(t, done, 5*time.Second, "bounded shutdown"); err != nil {
		t.Errorf("ServeListener = %v, want nil", err)
	}
	if err := within(t, reqDone, 5*time.Second, "stuck request closed"); err == nil {
		t.Error("stuck request got a response, want its connection closed")
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9477", true},
		{"127.0.0.2:9477", true},
		{"[::1]:1", true},
		{"localhost:9477", true},
		{"LocalHost:9477", true},
		{"localhost.:9477", true},
		{"[::ffff:127.0.0.1]:9477", true},
		{":9477", false},
		{"0.0.0.0:1", false},
		{"[::]:1", false},
		{"10.0.0.5:1", false},
		{"192.168.1.2:9477", false},
		{"example.com:9477", false},
		{"localhost.example.com:9477", false},
		{"127.0.0.1", false}, // no port: not a listen address
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := IsLoopback(tt.addr); got != tt.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func FuzzIsLoopback(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9477", "[::1]:1", "localhost:9477", ":9477", "0.0.0.0:1", "[fe80::1%lo]:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if !IsLoopback(addr) {
			return
		}
		// Whatever it accepts must name loopback only: a wildcard never passes.
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			t.Fatalf("IsLoopback(%q) = true for a malformed or wildcard address", addr)
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
			t.Fatalf("IsLoopback(%q) = true for non-loopback IP %v", addr, ip)
		}
	})
}
