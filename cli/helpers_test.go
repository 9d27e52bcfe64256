package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crmdrop/admin"
	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/zoho/zohotest"
)

// Distinctive secrets, so that a test can look for them in any output.
const (
	testSecret  = "s3cret-CLIENT-7d2f0a9e"
	testRefresh = "1000.REFRESHTOKEN0123456789abcdef.c0ffee"
	testRecord  = "3477061000005177002"
)

func newFake(t *testing.T, opts zohotest.Options) *zohotest.Server {
	t.Helper()
	opts.ClientSecret, opts.RefreshToken = testSecret, testRefresh
	return zohotest.NewServer(t, opts)
}

// setup is a temporary crmdrop installation: a config file, an inbox, a state folder.
type setup struct {
	t       *testing.T
	dir     string
	inbox   string
	state   string
	cfgPath string
	admin   string // admin_listen
	fake    *zohotest.Server
}

// cfgOpts change what newSetup writes into config.yaml.
type cfgOpts struct {
	secret      string // client_secret; default testSecret
	refresh     string // refresh_token line value; default testRefresh
	adminListen string // default: a free loopback port; "-" for ""
	extra       string // more YAML lines
	noInbox     bool   // do not create the inbox
}

func newSetup(t *testing.T, fake *zohotest.Server, o cfgOpts) *setup {
	t.Helper()
	dir := t.TempDir()
	s := &setup{t: t, dir: dir, inbox: filepath.Join(dir, "inbox"), state: filepath.Join(dir, "state"), fake: fake}
	if !o.noInbox {
		if err := os.MkdirAll(s.inbox, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	switch o.adminListen {
	case "":
		s.admin = freeAddr(t)
	case "-":
		s.admin = ""
	default:
		s.admin = o.adminListen
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.refresh == "" {
		o.refresh = testRefresh
	}
	url := "http://" + freeAddr(t) // no fake: a refused connection, never the real Zoho
	if fake != nil {
		url = fake.URL()
	}
	text := fmt.Sprintf(`inbox: %q
state_dir: %q
zoho:
  accounts_url: %q
  api_domain: %q
  client_id: %q
  client_secret: %q
  refresh_token: %q
settle: 100ms
rescan_interval: 1s
retry:
  initial_delay: 10ms
  max_delay: 100ms
  blocked_probe: 100ms
admin_listen: %q
%s`, s.inbox, s.state, url, url, zohotest.DefaultClientID, o.secret, o.refresh, s.admin, o.extra)
	s.cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs crmdrop with args and -c, and returns the exit status and the output.
func (s *setup) run(args ...string) (code int, stdout, stderr string) {
	s.t.Helper()
	return runMain(s.t, append(args, "-c", s.cfgPath)...)
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, Env{Stdout: &out, Stderr: &errb, Version: "test"})
	t.Logf("crmdrop %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func (s *setup) path(rel string) string { return filepath.Join(s.inbox, filepath.FromSlash(rel)) }

func (s *setup) write(rel, body string) {
	s.t.Helper()
	p := s.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *setup) config() config.Config {
	s.t.Helper()
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return cfg
}

// startDaemon runs the real daemon on the setup's config, logging through newLogger
// (as `run` does) to w, until the test ends or stop is called. It returns once the
// admin endpoint answers (when there is one).
func (s *setup) startDaemon(w io.Writer) (stop func()) {
	s.t.Helper()
	cfg := s.config()
	log, closeLog, err := newLogger(cfg, w)
	if err != nil {
		s.t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, Version: "test"})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					s.t.Errorf("daemon Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				s.t.Error("daemon did not stop within 15s")
			}
			d.Close()
			closeLog()
		})
	}
	s.t.Cleanup(stop)
	if s.admin != "" {
		waitFor(s.t, "the daemon's admin endpoint", func() bool {
			select {
			case err := <-done:
				s.t.Fatalf("daemon stopped at start: %v", err)
			default:
			}
			_, err := admin.Fetch(s.t.Context(), s.admin)
			return err == nil
		})
	}
	return stop
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on (it was free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines returns the lines of s that start with prefix.
func lines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// noSecrets fails the test if any secret appears in text.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q", what, s)
		}
	}
}

// squash collapses runs of blanks, so that a test does not depend on column widths.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }
