package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string // nil: an error is expected
		errs []string          // substrings of the error, in order
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "plain", in: "A=1\nB_2=two words\n", want: map[string]string{"A": "1", "B_2": "two words"}},
		{name: "comments and blanks", in: "# secrets\n\n   \n  # indented\nA=1\n", want: map[string]string{"A": "1"}},
		{name: "export prefix", in: "export A=1\nexport\tB=2\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "variable named export", in: "export=1\nexported=2\n", want: map[string]string{"export": "1", "exported": "2"}},
		{name: "blanks around", in: "  A = 1  \n\tB=\t2\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "empty value", in: "A=\nB=''\nC=\"\"\n", want: map[string]string{"A": "", "B": "", "C": ""}},
		{name: "double quotes", in: `A="a b # c"` + "\n" + `B="say \"hi\" \\o/"` + "\n", want: map[string]string{"A": "a b # c", "B": `say "hi" \o/`}},
		{name: "double quotes keep other backslashes", in: `P="C:\new\table"` + "\n", want: map[string]string{"P": `C:\new\table`}},
		{name: "single quotes literal", in: `A='$x "y" \z'` + "\n", want: map[string]string{"A": `$x "y" \z`}},
		{name: "comment after quotes", in: "A='v' # note\nB=\"w\"#x\n", want: map[string]string{"A": "v", "B": "w"}},
		{name: "hash in unquoted value kept", in: "A=pa#ss # not a comment\n", want: map[string]string{"A": "pa#ss # not a comment"}},
		{name: "equals and dollar in value", in: "A=b=c==\nB=$HOME${X}\n", want: map[string]string{"A": "b=c==", "B": "$HOME${X}"}},
		{name: "crlf", in: "A=1\r\nB='2'\r\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "bom", in: "\uFEFFA=1\n", want: map[string]string{"A": "1"}},
		{name: "no final newline", in: "A=1", want: map[string]string{"A": "1"}},
		{name: "last wins", in: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "no equals", in: "A=1\nS3CR3T\n", errs: []string{"line 2: expected KEY=value"}},
		{name: "bad name", in: "1A=x\nA B=S3CR3T\n-=x\n", errs: []string{"line 1: the name", "line 2: the name", "line 3: the name"}},
		{name: "empty name", in: "=S3CR3T\n", errs: []string{"line 1: the name"}},
		{name: "open double quote", in: "A=\"S3CR3T\n", errs: []string{"line 1: the double quote is not closed"}},
		{name: "open single quote", in: "A='S3CR3T\n", errs: []string{"line 1: the single quote is not closed"}},
		{name: "text after quote", in: "A='S3' CR3T\n", errs: []string{"line 1: text after the closing quote"}},
		{name: "escaped quote does not close", in: `A="S3CR3T\"` + "\n", errs: []string{"line 1: the double quote is not closed"}},
		{name: "nul", in: "A=S3\x00CR3T\n", errs: []string{"line 1: contains a NUL byte"}},
		{name: "every bad line", in: "x\nA=1\ny\n", errs: []string{"line 1:", "line 3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, err := parseEnv(strings.NewReader(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("parseEnv(%q) = %v, want an error", tt.in, vars)
				}
				msg := err.Error()
				for _, e := range tt.errs {
					i := strings.Index(msg, e)
					if i < 0 {
						t.Fatalf("parseEnv(%q) error %q, want it to contain %q", tt.in, msg, e)
					}
					msg = msg[i+len(e):]
				}
				if strings.Contains(err.Error(), "S3") || strings.Contains(err.Error(), "CR3T") {
					t.Errorf("parseEnv(%q) error %q echoes the value", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEnv(%q) error %v", tt.in, err)
			}
			got := map[string]string{}
			for _, v := range vars {
				got[v.key] = v.value
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEnvTooLarge(t *testing.T) {
	in := strings.Repeat("A=0123456789abcdef\n", maxEnvFileSize/16)
	if _, err := parseEnv(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("parseEnv(%d bytes) error %v, want a size error", len(in), err)
	}
	long := "A=" + strings.Repeat("x", maxEnvFileSize+10)
	if _, err := parseEnv(strings.NewReader(long)); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("parseEnv(one long line) error %v, want a size error", err)
	}
}

func TestLoadEnvFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "crmdrop.env")
	write(t, path, "CRMDROP_CLIENT_SECRET='s3cr3t'\nexport CRMDROP_REFRESH_TOKEN=1000.abc\nALREADY=from-file\n")
	env := map[string]string{"ALREADY": "from-env"}
	var order []string
	setenv := func(k, v string) error { env[k] = v; order = append(order, k); return nil }
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := LoadEnvFile(path, setenv, lookup); err != nil {
		t.Fatalf("LoadEnvFile: %v", err)
	}
	want := map[string]string{"CRMDROP_CLIENT_SECRET": "s3cr3t", "CRMDROP_REFRESH_TOKEN": "1000.abc", "ALREADY": "from-env"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("environment = %q, want %q", env, want)
	}
	if want := []string{"CRMDROP_CLIENT_SECRET", "CRMDROP_REFRESH_TOKEN"}; !reflect.DeepEqual(order, want) {
		t.Errorf("set %q, want %q (in file order, existing ones skipped)", order, want)
	}

	t.Run("bad file sets nothing", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.env")
		write(t, bad, "A=1\nB='s3cr3t\n")
		set := 0
		err := LoadEnvFile(bad, func(k, v string) error { set++; return nil }, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), bad+" line 2: ") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("LoadEnvFile(bad) error %v, want %q and no value", err, bad+" line 2: ")
		}
		if set != 0 {
			t.Errorf("LoadEnvFile(bad) set %d variables, want 0", set)
		}
	})
	t.Run("missing", func(t *testing.T) {
		err := LoadEnvFile(filepath.Join(dir, "nope.env"), setenv, lookup)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "service.env_file") {
			t.Errorf("LoadEnvFile(missing) error %v, want ErrNotExist naming service.env_file", err)
		}
	})
	t.Run("setenv error", func(t *testing.T) {
		boom := errors.New("boom")
		err := LoadEnvFile(path, func(k, v string) error { return boom }, func(string) (string, bool) { return "", false })
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "line 1") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("LoadEnvFile error %v, want boom at line 1 without the value", err)
		}
	})
}

func TestCheckEnvFilePerm(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not show Windows ACLs")
	}
	path := filepath.Join(t.TempDir(), "env")
	write(t, path, "A=1\n")
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}, {0o644, true}, {0o660, true}} {
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		err := CheckEnvFilePerm(path)
		if (err != nil) != tt.warn {
			t.Errorf("CheckEnvFilePerm(mode %04o) = %v, want warning %v", tt.mode, err, tt.warn)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("CheckEnvFilePerm(mode %04o) = %q, want it to say chmod 600", tt.mode, err)
		}
	}
}

func TestPeekService(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CRMDROP_TEST_ENVDIR", "/opt/env")
	tests := []struct {
		name    string
		yaml    string
		want    Service
		wantErr string
	}{
		{
			name: "only the service section is read",
			// The rest refers to unset variables and is invalid: the peek must not care.
			yaml: "inbox: ${CRMDROP_UNSET_VAR}\nworkers: many\nbogus: 1\nzoho:\n  client_secret: ${CRMDROP_UNSET_SECRET}\n" +
				"service:\n  name: drop2\n  display_name: Drop Two\n  description: d\n  user: svc\n  env_file: secrets.env\n",
			want: Service{Name: "drop2", DisplayName: "Drop Two", Description: "d", User: "svc", EnvFile: filepath.Join(dir, "secrets.env")},
		},
		{name: "no service section", yaml: "inbox: /in\n", want: Service{Name: "crmdrop"}},
		{name: "empty file", yaml: "", want: Service{Name: "crmdrop"}},
		{name: "null section", yaml: "service:\n", want: Service{Name: "crmdrop"}},
		{name: "null env_file", yaml: "service:\n  env_file:\n", want: Service{Name: "crmdrop"}},
		{name: "blank env_file", yaml: "service:\n  env_file: '  '\n", want: Service{Name: "crmdrop"}},
		{name: "absolute", yaml: "service:\n  env_file: " + filepath.Join(dir, "x", "..", "abs.env") + "\n", want: Service{Name: "crmdrop", EnvFile: filepath.Join(dir, "abs.env")}},
		{name: "expanded", yaml: "service:\n  env_file: ${CRMDROP_TEST_ENVDIR}/crmdrop.env\n", want: Service{Name: "crmdrop", EnvFile: filepath.Clean("/opt/env/crmdrop.env")}},
		{name: "wrong kind left to Load", yaml: "service:\n  env_file: [a]\n  name: {x: 1}\n", want: Service{Name: "crmdrop"}},
		{name: "alias", yaml: "x: &s\n  env_file: a.env\nservice: *s\n", want: Service{Name: "crmdrop", EnvFile: filepath.Join(dir, "a.env")}},
		{name: "unset variable", yaml: "service:\n  env_file: ${CRMDROP_UNSET_VAR}\n", wantErr: "line 2: service.env_file: environment variable CRMDROP_UNSET_VAR is not set"},
		{name: "syntax error", yaml: "service:\n  env_file: [\n", wantErr: "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "config.yaml")
			write(t, path, tt.yaml)
			got, err := PeekService(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), path) {
					t.Fatalf("PeekService() error %v, want %q naming the file", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("PeekService() error %v", err)
			}
			if got != tt.want {
				t.Errorf("PeekService() = %+v, want %+v", got, tt.want)
			}
			ef, err := EnvFile(path)
			if err != nil || ef != tt.want.EnvFile {
				t.Errorf("EnvFile() = %q, %v, want %q", ef, err, tt.want.EnvFile)
			}
		})
	}
	t.Run("missing config", func(t *testing.T) {
		if _, err := EnvFile(filepath.Join(dir, "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("EnvFile(missing) error %v, want ErrNotExist", err)
		}
	})
}

// TestEnvFileBeforeLoad is the order `crmdrop run` uses: the secrets the config refers
// to come from the env file named in that same config.
func TestEnvFileBeforeLoad(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	write(t, cfgPath, "inbox: in\nzoho:\n  client_secret: ${CRMDROP_TEST_PEEK_SECRET}\nservice:\n  env_file: crmdrop.env\n")
	write(t, filepath.Join(dir, "crmdrop.env"), "CRMDROP_TEST_PEEK_SECRET=s3cr3t-value\n")
	ef, err := EnvFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, ok
		}
		return os.LookupEnv(k)
	}
	if err := LoadEnvFile(ef, func(k, v string) error { env[k] = v; return nil }, lookup); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(strings.NewReader(string(data)), lookup)
	if err != nil {
		t.Fatalf("Parse after LoadEnvFile: %v", err)
	}
	if cfg.Zoho.ClientSecret != "s3cr3t-value" {
		t.Errorf("client_secret = %q, want the env file's value", cfg.Zoho.ClientSecret)
	}
}

func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{
		"", "A=1\n", "export A='x y'\n", `A="a\"b\\c\d"` + "\n", "# c\n\r\n", "\uFEFFA=1\r\n",
		"A='open\n", "A=\"open\n", "1=2\n", "A= 'x' # c\n", "A='x' y\n", "export\n", "=\n", "A=\x00\n",
		"A=1\nA=2\n", "export  export=1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		const secret = "S3CR3T"
		vars, err := parseEnv(strings.NewReader(secret + "=" + in + "\n" + in))
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("parseEnv error %q quotes the file", err)
			}
			return
		}
		for _, v := range vars {
			if !validEnvName(v.key) || strings.IndexByte(v.value, 0) >= 0 {
				t.Fatalf("parseEnv gave %q=%q", v.key, v.value)
			}
			// What parses must survive a round trip in single quotes (the form the docs use).
			if strings.ContainsAny(v.value, "'\n\r") {
				continue
			}
			again, err := parseEnv(strings.NewReader(v.key + "='" + v.value + "'\n"))
			if err != nil || len(again) != 1 || again[0].value != v.value {
				t.Fatalf("round trip of %q=%q gave %v, %v", v.key, v.value, again, err)
			}
		}
	})
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckConfigPerm(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits mean nothing on Windows")
	}
	dir := t.TempDir()
	c := Default()
	c.Zoho.ClientSecret = "s3cret-value"
	for _, tt := range []struct {
		name string
		text string
		mode os.FileMode
		want bool
	}{
		{"literal secret, world-readable", "client_secret: s3cret-value\n", 0o644, true},
		{"literal secret, private", "client_secret: s3cret-value\n", 0o600, false},
		{"variable reference, world-readable", "client_secret: ${X}\n", 0o644, false},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		os.WriteFile(p, []byte(tt.text), tt.mode)
		os.Chmod(p, tt.mode)
		err := CheckConfigPerm(p, c)
		if (err != nil) != tt.want {
			t.Errorf("%s: CheckConfigPerm = %v, want finding %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret-value") {
			t.Errorf("%s: the finding prints the secret", tt.name)
		}
	}
}
