package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"crmdrop/daemon"
	"crmdrop/store"
	"crmdrop/zoho/zohotest"
)

func TestCheckOK(t *testing.T) {
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{})
	if err := os.MkdirAll(s.path("Contacts/"+testRecord), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := s.run("check")
	if code != exitOK {
		t.Fatalf("check = exit %d, want 0; stderr %q", code, errOut)
	}
	for _, want := range []string{
		"ok    config " + s.cfgPath,
		"ok    inbox " + s.inbox + " (writable)",
		"ok    " + filepath.Join(s.inbox, "_failed") + " (will be created)",
		"ok    state_dir " + s.state + " (will be created)",
		"ok    ledger " + filepath.Join(s.state, "ledger.db") + " (not created yet",
		"ok    zoho token refresh at " + fake.URL(),
		"ok    zoho read (Contacts records, API v2)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if f := lines(out, "FAIL"); len(f) != 0 || errOut != "" {
		t.Errorf("check FAIL lines %q, stderr %q, want none", f, errOut)
	}
	// One refresh, one read, and nothing left behind.
	if n := len(fake.Minted()); n != 1 {
		t.Errorf("check minted %d tokens, want 1", n)
	}
	if n := fake.Requests().Records; n != 1 {
		t.Errorf("check made %d reads, want 1", n)
	}
	for _, p := range []string{s.state, s.path("_failed"), s.path("_uploaded")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("check created %s", p)
		}
	}
	if ents, _ := os.ReadDir(s.inbox); len(ents) != 1 {
		t.Errorf("inbox after check holds %d entries, want only Contacts/", len(ents))
	}
	noSecrets(t, "check output", out+errOut, testSecret, testRefresh)

	// A second check refreshes again: a cached token would prove nothing.
	if code, _, _ := s.run("check"); code != exitOK || len(fake.Minted()) != 2 {
		t.Errorf("second check = exit %d after %d mints, want 0 after 2", code, len(fake.Minted()))
	}
}

func TestCheckZohoFailures(t *testing.T) {
	tests := []struct {
		name    string
		opts    cfgOpts
		prepare func(*zohotest.Server)
		want    string
	}{
		{"wrong secret", cfgOpts{secret: "wrong-secret-0000"}, nil,
			"FAIL  zoho token refresh at %s: client rejected (invalid_client): check client_id and client_secret"},
		{"revoked refresh token", cfgOpts{}, func(f *zohotest.Server) { f.RevokeRefreshToken(testRefresh) },
			"FAIL  zoho token refresh at %s: refresh token rejected (invalid_code)"},
		{"scope", cfgOpts{}, func(f *zohotest.Server) { f.SetScopeMismatch(true) },
			"FAIL  zoho read (Leads records, API v2): the refresh token's scope does not cover Leads; generate a new grant token with scope ZohoCRM.modules.ALL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t, zohotest.Options{})
			if tt.prepare != nil {
				tt.prepare(fake)
			}
			s := newSetup(t, fake, tt.opts)
			code, out, errOut := s.run("check")
			if code != exitFailure {
				t.Errorf("check = exit %d, want 1", code)
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = strings.Replace(want, "%s", fake.URL(), 1)
			}
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q", want)
			}
			if !strings.Contains(errOut, "checks failed") {
				t.Errorf("stderr = %q, want the count of failed checks", errOut)
			}
			noSecrets(t, "check output", out+errOut, testSecret, testRefresh, "wrong-secret-0000")
			for _, tok := range fake.Tokens() {
				noSecrets(t, "check output", out+errOut, tok)
			}
		})
	}
}

func TestCheckFolders(t *testing.T) {
	t.Run("inbox missing", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{noInbox: true})
		code, out, _ := s.run("check")
		want := "FAIL  inbox " + s.inbox + `: does not exist; create it or fix "inbox"`
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
	t.Run("_failed is a file", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{})
		s.write("_failed", "x")
		code, out, _ := s.run("check")
		want := "FAIL  " + s.path("_failed") + " is a file, but crmdrop needs a folder there"
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
	t.Run("state_dir inside the inbox through a link", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{})
		if err := os.Symlink(s.inbox, filepath.Join(s.dir, "state")); err != nil {
			t.Skip("no symbolic links here:", err)
		}
		code, out, _ := s.run("check")
		want := "FAIL  state_dir " + s.state + " is inside the inbox " + s.inbox
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
	t.Run("log.file and a missing env_file", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{extra: "log:\n  file: logs/crmdrop.log\nservice:\n  env_file: crmdrop.env\n"})
		_, out, _ := s.run("check")
		for _, want := range []string{
			"ok    log.file " + filepath.Join(s.dir, "logs", "crmdrop.log") + " (writable)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q", want)
			}
		}
		want := "FAIL  service.env_file " + filepath.Join(s.dir, "crmdrop.env") + ": does not exist; create it (crmdrop auth --write does) or clear service.env_file"
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "logs")); !os.IsNotExist(err) {
			t.Error("check created the log folder")
		}
	})
	t.Run("read-only inbox", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("needs a file system that denies writes to this user")
		}
		s := newSetup(t, nil, cfgOpts{})
		if err := os.Chmod(s.inbox, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(s.inbox, 0o755) })
		code, out, _ := s.run("check")
		want := "FAIL  inbox " + s.inbox + ": cannot create files in it (permission denied); give the service's user write access"
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
}

func TestCheckPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not describe Windows ACLs")
	}
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{})
	warn := "warn  " + s.cfgPath + " is readable by other users and holds secrets; chmod 600 it"
	if _, out, _ := s.run("check"); strings.Contains(out, warn) {
		t.Errorf("0600 config: check warns %q", warn)
	}
	if err := os.Chmod(s.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := s.run("check")
	if code != exitOK || !strings.Contains(out, warn) {
		t.Errorf("0644 config with secrets: check = exit %d, want 0 with %q", code, warn)
	}

	// Secrets in the env file: the config may be world-readable, the env file not.
	env := filepath.Join(s.dir, "crmdrop.env")
	if err := os.WriteFile(env, []byte("CRMDROP_T_SECRET="+testSecret+"\nCRMDROP_T_REFRESH="+testRefresh+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := newSetup(t, fake, cfgOpts{secret: "${CRMDROP_T_SECRET}", refresh: "${CRMDROP_T_REFRESH}", extra: "service:\n  env_file: " + env + "\n"})
	if err := os.Chmod(s2.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = s2.run("check")
	if code != exitOK {
		t.Errorf("check with secrets from env_file = exit %d, want 0", code)
	}
	if strings.Contains(out, "warn  "+s2.cfgPath) {
		t.Errorf("config without literal secrets: check warns about it")
	}
	if want := "warn  env file " + env + " holds secrets but other users may read it (mode 0644); run: chmod 600 " + env; !strings.Contains(out, want) {
		t.Errorf("check output lacks %q", want)
	}
	if !strings.Contains(out, "ok    zoho token refresh") {
		t.Errorf("the secrets from env_file did not reach the token refresh")
	}
}

func TestCheckMissingCredentials(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{refresh: "${CRMDROP_TEST_NEVER_SET_4F2A}"})
	code, out, _ := s.run("check")
	if code != exitFailure {
		t.Errorf("check = exit %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL  zoho.refresh_token: refers to an environment variable that is set neither in the environment nor in service.env_file",
		"skip  zoho token refresh and read: the credentials are missing",
		"ok    inbox " + s.inbox,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
}

func TestCheckLedger(t *testing.T) {
	fake := newFake(t, zohotest.Options{})

	t.Run("held by another process", func(t *testing.T) {
		s := newSetup(t, fake, cfgOpts{})
		led, err := store.Open(daemon.LedgerPath(s.config()), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer led.Close()
		code, out, _ := s.run("check")
		want := "FAIL  ledger " + filepath.Join(s.state, "ledger.db") + " is in use by another process, but no crmdrop daemon answers at " + s.admin
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
	t.Run("held by the running daemon", func(t *testing.T) {
		s := newSetup(t, fake, cfgOpts{})
		s.startDaemon(testLog{t})
		code, out, _ := s.run("check")
		want := "ok    ledger " + filepath.Join(s.state, "ledger.db") + " (in use by the running daemon at " + s.admin + ")"
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("check = exit %d, output lacks %q", code, want)
		}
	})
	t.Run("not in use", func(t *testing.T) {
		s := newSetup(t, fake, cfgOpts{})
		led, err := store.Open(daemon.LedgerPath(s.config()), store.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		led.Close()
		if _, out, _ := s.run("check"); !strings.Contains(out, "ok    ledger "+filepath.Join(s.state, "ledger.db")+" (not in use") {
			t.Errorf("check output lacks the free ledger line")
		}
	})
}

// testLog sends the daemon's log to t.Log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("inbox: /srv/inbox\nworkers: 0\nsettle: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check"}, {"status"}, {"status", "--json"}, {"list"}, {"retry", "--all-failed"}, {"auth", "--grant-token", "1000.abc"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runMain(t, append(args, "-c", cfg)...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2", code)
			}
			for _, want := range []string{
				"crmdrop: " + cfg + " line 2: workers: must be between 1 and 64",
				"crmdrop: " + cfg + " line 3: settle: ",
			} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		code, _, errOut := runMain(t, "status", "-c", filepath.Join(dir, "nope.yaml"))
		if code != exitUsage || !strings.Contains(errOut, "pass -c with the path to config.yaml") {
			t.Errorf("status with a missing config = exit %d, stderr %q", code, errOut)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "extra"}, "check takes no arguments"},
		{[]string{"status", "extra"}, "status takes no arguments"},
		{[]string{"list", "--state", "done"}, `unknown state "done"; use one of pending, uploading, uploaded, failed`},
		{[]string{"list", "--limit", "-1"}, "--limit must be 0 (all) or more"},
		{[]string{"retry"}, "say which files to retry"},
		{[]string{"retry", "--all-failed", "Leads/1/a.pdf"}, "either --all-failed or paths, not both"},
		{[]string{"auth"}, "auth needs --grant-token T"},
		{[]string{"auth", "--grant-token", "x", "--write"}, "--write stores the token in service.env_file, which the configuration does not set"},
		{[]string{"status", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := s.run(tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.want)
			}
		})
	}
}
