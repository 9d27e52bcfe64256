package cli

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crmdrop/admin"
	"crmdrop/zoho/zohotest"
)

// TestNoSecretsLeak runs the daemon at debug level, with the logger `run` builds,
// through uploads, a token refresh, a failure and a blocked episode, then looks for
// every secret (client secret, refresh token, each access token the fake minted) in
// the whole log, the status and list output, /metrics, and every file staff can see.
func TestNoSecretsLeak(t *testing.T) {
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{extra: "log:\n  level: debug\n"})
	var logBuf syncBuffer
	stop := s.startDaemon(&logBuf)
	var shown []string // everything printed or served, to search at the end
	show := func(args ...string) {
		t.Helper()
		code, out, errOut := s.run(args...)
		if code != exitOK {
			t.Fatalf("crmdrop %s = exit %d", strings.Join(args, " "), code)
		}
		shown = append(shown, out, errOut)
	}
	metrics := func() {
		t.Helper()
		resp, err := http.Get("http://" + s.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "crmdrop_tokens_minted_total") {
			t.Fatalf("/metrics lacks crmdrop_tokens_minted_total:\n%s", b)
		}
		shown = append(shown, string(b))
	}
	status := func() admin.Status {
		st, err := admin.Fetch(t.Context(), s.admin)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	rec := "Leads/" + testRecord

	s.write(rec+"/one.pdf", "one")
	waitFor(t, "the first upload", func() bool { return len(fake.Uploads()) == 1 })

	// Zoho drops every token: the next upload gets 401 INVALID_TOKEN and refreshes.
	fake.ExpireTokens()
	s.write(rec+"/two.pdf", "two")
	waitFor(t, "the upload after a refresh", func() bool { return len(fake.Uploads()) == 2 })
	if n := len(fake.Tokens()); n < 2 {
		t.Fatalf("the fake minted %d tokens, want a refresh", n)
	}

	// A refusal for one file.
	fake.InvalidRecord("Deals", "1")
	s.write("Deals/1/bad.pdf", "bad")
	waitFor(t, "the failure", func() bool { return s.exists("_failed/Deals/1/bad.pdf.error.txt") })

	// Blocked until the scope is fixed.
	fake.SetScopeMismatch(true)
	s.write(rec+"/three.pdf", "three")
	waitFor(t, "the blocked state", func() bool { return status().State == admin.StateBlocked })
	show("status", "--json")
	show("status")
	metrics()
	fake.SetScopeMismatch(false)
	waitFor(t, "uploads to resume", func() bool { return len(fake.Uploads()) == 3 && status().State == admin.StateRunning })

	waitFor(t, "the ledger to settle", func() bool { st := status(); return st.Counts["uploaded"] == 3 && st.Counts["failed"] == 1 })
	show("status", "--json")
	show("list", "--json")
	show("list")
	metrics()
	stop()
	show("status", "--json") // from the ledger
	show("list", "--state", "failed")

	log := logBuf.String()
	for _, want := range []string{"level=DEBUG", "zoho token rejected, refreshing", "uploads paused until an admin acts", "uploads resumed", "file failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q: the test did not exercise what it claims", want)
		}
	}
	secrets := append([]string{testSecret, testRefresh}, fake.Tokens()...)
	noSecrets(t, "the daemon's log", log, secrets...)
	for i, out := range shown {
		noSecrets(t, "output "+string(rune('A'+i)), out, secrets...)
	}
	// What staff see: every file in the inbox, .error.txt files included.
	filepath.WalkDir(s.inbox, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			noSecrets(t, p, string(b), secrets...)
		}
		return nil
	})
}
