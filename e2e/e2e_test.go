// Package e2e runs the real crmdrop binary against the fake Zoho CRM over loopback and
// breaks it on purpose: kill -9 at random instants, SIGTERM, restarts. Set
// CRMDROP_SOAK=1 for the long version.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"crmdrop/zoho/zohotest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds crmdrop once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crmdrop-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "crmdrop")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", binPath, "crmdrop").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type env struct {
	t      *testing.T
	dir    string
	inbox  string
	config string
	fake   *zohotest.Server
	logs   bytes.Buffer
	mu     sync.Mutex
}

func newEnv(t *testing.T, fake *zohotest.Server, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, inbox: filepath.Join(dir, "inbox"), config: filepath.Join(dir, "config.yaml"), fake: fake}
	if err := os.MkdirAll(e.inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`inbox: %s
state_dir: %s
zoho:
  accounts_url: %s
  api_domain: %s
  client_id: %s
  client_secret: ${TEST_CLIENT_SECRET}
  refresh_token: ${TEST_REFRESH_TOKEN}
workers: 4
settle: 200ms
rescan_interval: 2s
retry:
  initial_delay: 20ms
  max_delay: 500ms
  blocked_probe: 200ms
admin_listen: ""
log:
  level: debug
%s`, e.inbox, filepath.Join(dir, "state"), fake.URL(), fake.URL(), zohotest.DefaultClientID, extra)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs `crmdrop run` with the secrets in its environment.
func (e *env) start() *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(binary(e.t), "run", "-c", e.config)
	cmd.Env = append(os.Environ(),
		"TEST_CLIENT_SECRET="+zohotest.DefaultClientSecret,
		"TEST_REFRESH_TOKEN="+zohotest.DefaultRefreshToken)
	w := &lockedWriter{mu: &e.mu, w: &e.logs}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

// drop writes body to rel via a temporary name and a rename, as a careful scanner
// does, so the content is complete whenever the file is visible.
func (e *env) drop(rel, body string) {
	e.t.Helper()
	p := filepath.Join(e.inbox, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p+".tmp", []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		e.t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// checkExactlyOnce asserts the fake holds each file exactly once with its content.
func checkExactlyOnce(t *testing.T, fake *zohotest.Server, want map[string]string) (missing, doubled int) {
	t.Helper()
	seen := map[string]int{}
	for _, a := range fake.Uploads() {
		key := a.Module + "/" + a.RecordID + "/" + a.FileName
		seen[key]++
		if body, ok := want[key]; !ok {
			t.Errorf("unexpected attachment %s", key)
		} else if a.SHA256 != sum(body) {
			t.Errorf("%s stored with sha256 %s, want %s", key, a.SHA256, sum(body))
		}
	}
	for key := range want {
		switch n := seen[key]; {
		case n == 0:
			missing++
			t.Errorf("%s never stored", key)
		case n > 1:
			doubled++
			t.Errorf("%s stored %d times", key, n)
		}
	}
	return missing, doubled
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countFiles(root string) int {
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".error.txt") {
			n++
		}
		return nil
	})
	return n
}

func soak() bool { return os.Getenv("CRMDROP_SOAK") != "" }
