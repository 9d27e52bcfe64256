package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"crmdrop/config"
	"crmdrop/zoho/zohotest"
)

const grantCode = "1000.GRANTCODE5f3e2d1c0b9a.8877"

func TestAuth(t *testing.T) {
	fake := newFake(t, zohotest.Options{GrantCodes: []string{grantCode}})
	// First set-up: the refresh token's variable is set nowhere yet.
	s := newSetup(t, fake, cfgOpts{refresh: "${CRMDROP_TEST_NEVER_SET_4F2A}"})

	code, out, errOut := s.run("auth", "--grant-token", "1000.not-a-code")
	if code != exitFailure {
		t.Errorf("auth with a bad code = exit %d, want 1", code)
	}
	if want := "crmdrop: the grant token is wrong or expired (they last 10 minutes and work once): generate a new one in the API Console's Self Client"; !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("auth with a bad code: stderr %q, want one line %q…", errOut, want)
	}
	if out != "" {
		t.Errorf("auth with a bad code: stdout %q, want nothing", out)
	}

	code, out, errOut = s.run("auth", "--grant-token", " "+grantCode+" ")
	if code != exitOK {
		t.Fatalf("auth = exit %d, want 0", code)
	}
	if out != testRefresh+"\n" {
		t.Errorf("auth stdout = %q, want the refresh token alone", out)
	}
	if !strings.Contains(errOut, "set CRMDROP_REFRESH_TOKEN to it, in the environment or in the service's env file (service.env_file)") {
		t.Errorf("auth stderr = %q, want where to put the token", errOut)
	}
	// The config reads another variable: say so.
	if want := "note: " + s.cfgPath + " does not read ${CRMDROP_REFRESH_TOKEN}"; !strings.Contains(errOut, want) {
		t.Errorf("auth stderr = %q, want %q", errOut, want)
	}
	noSecrets(t, "auth stderr", errOut, testRefresh, testSecret, grantCode)

	// The code works once.
	if code, _, errOut := s.run("auth", "--grant-token", grantCode); code != exitFailure || !strings.Contains(errOut, "wrong or expired") {
		t.Errorf("auth with a used code = exit %d, stderr %q", code, errOut)
	}
}

func TestAuthWrongClient(t *testing.T) {
	fake := newFake(t, zohotest.Options{GrantCodes: []string{grantCode}})
	s := newSetup(t, fake, cfgOpts{secret: "wrong-secret-0000"})
	code, out, errOut := s.run("auth", "--grant-token", grantCode)
	want := "crmdrop: Zoho rejected the client (invalid_client): the client id or secret is wrong, or the Self Client belongs to another data center than " + fake.URL()
	if code != exitFailure || !strings.HasPrefix(errOut, want) || out != "" {
		t.Errorf("auth = exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	noSecrets(t, "auth stderr", errOut, "wrong-secret-0000", grantCode)
}

func TestAuthNeedsClient(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{secret: "${CRMDROP_TEST_NEVER_SET_4F2A}"})
	code, _, errOut := s.run("auth", "--grant-token", grantCode)
	want := s.cfgPath + " line 7: zoho.client_secret: environment variable CRMDROP_TEST_NEVER_SET_4F2A is not set"
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("auth without a client secret = exit %d, stderr %q; want 2 and %q", code, errOut, want)
	}
}

func TestAuthWrite(t *testing.T) {
	for _, v := range []string{"CRMDROP_CLIENT_SECRET", "CRMDROP_REFRESH_TOKEN"} {
		if _, ok := os.LookupEnv(v); ok {
			t.Skipf("%s is set in this environment and would win over the env file", v)
		}
	}
	fake := newFake(t, zohotest.Options{GrantCodes: []string{grantCode}})
	env := filepath.Join(t.TempDir(), "crmdrop.env")
	before := "# crmdrop's service environment\r\nCRMDROP_CLIENT_SECRET=" + testSecret + "\r\nCRMDROP_REFRESH_TOKEN=1000.old\r\nOTHER=x\r\nexport CRMDROP_REFRESH_TOKEN=1000.older\r\n"
	if err := os.WriteFile(env, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSetup(t, fake, cfgOpts{secret: "${CRMDROP_CLIENT_SECRET}", refresh: "${CRMDROP_REFRESH_TOKEN}", extra: "service:\n  env_file: " + env + "\n"})
	code, out, errOut := s.run("auth", "--grant-token", grantCode, "--write")
	if code != exitOK {
		t.Fatalf("auth --write = exit %d, want 0", code)
	}
	want := "wrote CRMDROP_REFRESH_TOKEN to " + env + " (mode 0600); restart the service"
	if !strings.HasPrefix(out, want) {
		t.Errorf("stdout = %q, want %q…", out, want)
	}
	noSecrets(t, "auth --write output", out+errOut, testRefresh, testSecret)
	if errOut != "" {
		t.Errorf("stderr = %q, want nothing (the config reads ${CRMDROP_REFRESH_TOKEN})", errOut)
	}
	got, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	after := "# crmdrop's service environment\r\nCRMDROP_CLIENT_SECRET=" + testSecret + "\r\nCRMDROP_REFRESH_TOKEN=" + testRefresh + "\r\nOTHER=x\r\n"
	if string(got) != after {
		t.Errorf("env file = %q, want %q", got, after)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(env); fi.Mode().Perm() != 0o600 {
			t.Errorf("env file mode = %v, want 0600", fi.Mode().Perm())
		}
	}
	// The config now resolves from the env file alone, as the service would.
	if code, out, _ := s.run("check"); code != exitOK || !strings.Contains(out, "ok    zoho token refresh") {
		t.Errorf("check after auth --write = exit %d", code)
	}
}

func TestSetEnvVar(t *testing.T) {
	tests := []struct {
		name, before, after string
	}{
		{"new file", "", "K=v\n"},
		{"append", "A=1\n", "A=1\nK=v\n"},
		{"append without final newline", "A=1", "A=1\nK=v\n"},
		{"replace", "A=1\nK=old\nB=2\n", "A=1\nK=v\nB=2\n"},
		{"replace spaced and quoted", "  K = \"old\"\n", "K=v\n"},
		{"drop duplicates", "K=1\nK=2\n# K=3\n", "K=v\n# K=3\n"},
		{"keep CRLF", "A=1\r\nK=old\r\n", "A=1\r\nK=v\r\n"},
		{"similar names kept", "KK=1\nK_=2\n", "KK=1\nK_=2\nK=v\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "sub", "env")
			if tt.before != "" {
				os.MkdirAll(filepath.Dir(p), 0o700)
				if err := os.WriteFile(p, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := setEnvVar(p, "K", "v"); err != nil {
				t.Fatalf("setEnvVar: %v", err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != tt.after {
				t.Errorf("setEnvVar(%q) = %q, want %q", tt.before, got, tt.after)
			}
			if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
				t.Errorf("setEnvVar left %d files in the folder, want 1", len(ents))
			}
		})
	}
}

// readEnv reads an env file as the service does (config.LoadEnvFile), into a map.
func readEnv(path string) (map[string]string, error) {
	vars := map[string]string{}
	err := config.LoadEnvFile(path, func(k, v string) error { vars[k] = v; return nil }, func(string) (string, bool) { return "", false })
	return vars, err
}

// FuzzSetEnvVar: whatever valid env file there was, afterwards config.LoadEnvFile reads
// the new value for the key and the same values as before for every other key.
func FuzzSetEnvVar(f *testing.F) {
	for _, s := range []string{"", "A=1\n", "K=old\r\nB=\"2\"\r\n", "# c\nexport K=1\nK=2", "\uFEFFK=1\n", " K=1", "exportK=1\n", "K='a b' # c\n"} {
		f.Add(s, "1000.abc.def")
	}
	f.Fuzz(func(t *testing.T, before, val string) {
		if strings.ContainsAny(val, "\r\n\x00\"'") || strings.Trim(val, " \t") != val {
			return // not a token
		}
		p := filepath.Join(t.TempDir(), "env")
		if err := os.WriteFile(p, []byte(before), 0o600); err != nil {
			t.Fatal(err)
		}
		old, err := readEnv(p)
		if err != nil {
			return // the service would refuse it too
		}
		if err := setEnvVar(p, "K", val); err != nil {
			t.Fatal(err)
		}
		got, err := readEnv(p)
		if err != nil {
			t.Fatalf("after setEnvVar the file does not parse: %v (before: %q)", err, before)
		}
		if got["K"] != val {
			t.Errorf("K = %q, want %q (file before: %q)", got["K"], val, before)
		}
		for k, v := range old {
			if k != "K" && got[k] != v {
				t.Errorf("%s = %q, want %q as before (file before: %q)", k, got[k], v, before)
			}
		}
	})
}

func TestEnvLine(t *testing.T) {
	tests := []struct {
		line, key, val string
		ok             bool
	}{
		{"A=1", "A", "1", true},
		{"  export A = 'x y' ", "A", "x y", true},
		{`A="1000.abc"`, "A", "1000.abc", true},
		{"A=", "A", "", true},
		{"A=b=c", "A", "b=c", true},
		{"# A=1", "", "", false},
		{"", "", "", false},
		{"novalue", "", "", false},
		{"A B=1", "", "", false},
		{`A="unbalanced`, "A", `"unbalanced`, true},
	}
	for _, tt := range tests {
		k, v, ok := envLine(tt.line)
		if k != tt.key || v != tt.val || ok != tt.ok {
			t.Errorf("envLine(%q) = %q, %q, %v, want %q, %q, %v", tt.line, k, v, ok, tt.key, tt.val, tt.ok)
		}
	}
}
