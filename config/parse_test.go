package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// TestParseProblems covers problems with the file itself rather than one
// key's value: each case wants exactly these lines, in this order.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty file", "", []string{"config.yaml: inbox: required; set it to the folder staff drop files into"}},
		{"only comments", "# nothing\n", []string{"config.yaml: inbox: required; set it to the folder staff drop files into"}},
		{"inbox empty", "workers: 2\ninbox: \"\"\n", []string{"config.yaml line 2: inbox: required; set it to the folder staff drop files into"}},
		{"inbox null", "inbox:\n", []string{"config.yaml line 1: inbox: required; set it to the folder staff drop files into"}},
		{"unknown top-level key", "inbox: /in\nwrokers: 4\n", []string{"config.yaml line 2: wrokers: unknown key; did you mean workers?"}},
		{"unknown nested key", "inbox: /in\nzoho:\n  data_center: eu\n  datacenter: eu\n", []string{"config.yaml line 4: zoho.datacenter: unknown key; did you mean data_center?"}},
		{"unknown key case", "inbox: /in\nlog:\n  Level: info\n", []string{"config.yaml line 3: log.Level: unknown key; did you mean level?"}},
		{"unknown key far off", "inbox: /in\nfrobnicate: 1\n", []string{"config.yaml line 2: frobnicate: unknown key (config.example.yaml lists every key)"}},
		{"unknown key under list", "inbox: /in\nretry:\n  max_delay: 1m\n  attempts: 3\n", []string{"config.yaml line 4: retry.attempts: unknown key (config.example.yaml lists every key)"}},
		{"key not expanded", "inbox: /in\n${KEY}: 1\n", []string{"config.yaml line 2: ${KEY}: unknown key (config.example.yaml lists every key)"}},
		{"duplicate key", "inbox: /in\nworkers: 2\nworkers: 3\n", []string{"config.yaml line 3: workers: set twice (first on line 2); keep one"}},
		{"merge key", "inbox: /in\nbase: &b {level: info}\nlog:\n  <<: *b\n", []string{
			"config.yaml line 2: base: unknown key (config.example.yaml lists every key)",
			"config.yaml line 4: log: merge keys (<<) are not supported; write the keys out",
		}},
		{"list at top", "- inbox\n", []string{`config.yaml line 1: must be a mapping of keys such as "inbox: /srv/crmdrop/inbox"`}},
		{"scalar at top", "inbox\n", []string{`config.yaml line 1: must be a mapping of keys such as "inbox: /srv/crmdrop/inbox"`}},
		{"syntax error", "inbox: /in\nzoho:\n  data_center: [eu\n", []string{"config.yaml line 3: not valid YAML: did not find expected ',' or ']'"}},
		{"tab indent", "inbox: /in\nzoho:\n\tdata_center: eu\n", []string{"config.yaml line 3: not valid YAML: found character that cannot start any token"}},
		{"unclosed list", "inbox: /in\nb: x\n\nignore: [\n  1,\n  2\n", []string{"config.yaml line 4: not valid YAML: did not find expected ',' or ']'"}},
		{"unclosed map", "inbox: /in\nlog: {level: info\nworkers: 1\n", []string{"config.yaml line 2: not valid YAML: did not find expected ',' or '}'"}},
		{"stray list item", "inbox: /in\nworkers: 2\n- c\n", []string{"config.yaml line 3: not valid YAML: did not find expected key"}},
		{"bad indent", "inbox: /in\nworkers: 2\n  settle: 3s\n", []string{"config.yaml line 3: not valid YAML: mapping values are not allowed in this context"}},
		{"unknown anchor", "inbox: /in\nworkers: *nope\n", []string{"config.yaml: not valid YAML: unknown anchor 'nope' referenced"}},
		{"two documents", "inbox: /in\n---\nworkers: 2\n", []string{"config.yaml line 2: holds a second YAML document (after ---); keep everything in one"}},
		{"complex key", "inbox: /in\n? [a, b]\n: 1\n", []string{"config.yaml line 2: keys must be plain names, not a list"}},
		{"list item not scalar", "inbox: /in\nignore:\n  - a\n  - {x: 1}\n", []string{"config.yaml line 4: ignore[1]: must be a single value, not a section of keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, nil)
			if err == nil {
				t.Fatalf("Parse(%q) = nil, want %q", tt.src, tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("Parse(%q) =\n%v\nwant %d lines:\n%s", tt.src, err, len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("Parse(%q) line %d = %q, want prefix %q", tt.src, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := `inbox: /srv/in
zoho:
  data_center: us
  client_id: ${NO_SUCH_VAR}
workers: 0
settle: soon
retry:
  initial_delay: 10m
  max_delay: 1m
color: blue
log:
  level: loud
`
	_, err := parse(t, src, nil)
	if err == nil {
		t.Fatal("Parse() = nil, want problems")
	}
	want := []string{
		`config.yaml line 3: zoho.data_center: must be one of`,
		`config.yaml line 4: zoho.client_id: environment variable NO_SUCH_VAR is not set; set it in the environment or in the service's env file (service.env_file)`,
		`config.yaml line 5: workers: must be between 1 and 64, got 0`,
		`config.yaml line 6: settle: must be a duration such as 5s, 10m or 1h30m, got "soon"`,
		`config.yaml line 9: retry.max_delay: must be at least retry.initial_delay (10m0s), got 1m0s`,
		`config.yaml line 10: color: unknown key`,
		`config.yaml line 12: log.level: must be debug, info, warn or error, got "loud"`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("Parse() =\n%v\nwant %d lines", err, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want func(c *Config) // applied to Default() with Inbox "/in"
	}{
		{"defaults", "inbox: /in", nil, func(c *Config) {}},
		{"alias", "inbox: /in\nx-common: &d 30s\nsettle: *d\n", nil, nil}, // x-common is unknown: see below
		{"alias section", "inbox: /in\nzoho: &z\n  data_center: eu\n", nil, func(c *Config) { c.Zoho.DataCenter = "eu" }},
		{"alias value", "inbox: &i /in\nstate_dir: *i\n", nil, nil}, // state_dir == inbox
		{"null list", "inbox: /in\nignore:\n", nil, func(c *Config) {}},
		{"empty list", "inbox: /in\nignore: []\n", nil, func(c *Config) { c.Ignore = []string{} }},
		{"null section keeps defaults", "inbox: /in\nretry:\nlog: ~\n", nil, func(c *Config) {}},
		{"quoted number", "inbox: /in\nworkers: \"8\"\n", nil, func(c *Config) { c.Workers = 8 }},
		{"string tag", "inbox: /in\nzoho:\n  client_id: !!str 1000\n", nil, func(c *Config) { c.Zoho.ClientID = "1000" }},
		{"document marker", "---\ninbox: /in\n...\n", nil, func(c *Config) {}},
		{"block scalar", "inbox: |-\n  /in\n", nil, func(c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.src, tt.env)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error", tt.src, c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.src, err)
			}
			want := Default()
			want.Inbox = "/in"
			tt.want(&want)
			if !reflect.DeepEqual(c, want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.src, c, want)
			}
		})
	}

	// An alias resolves to its anchor's value.
	c, err := parse(t, "inbox: /in\nsettle: &d 30s\nrescan_interval: *d\n", nil)
	if err != nil || c.RescanInterval != 30*time.Second {
		t.Errorf("Parse(alias) = %v, %v, want rescan_interval 30s", c.RescanInterval, err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{
		"CRMDROP_CLIENT_ID":     "1000.ID",
		"CRMDROP_CLIENT_SECRET": "pa$$w${ord}$",
		"CRMDROP_REFRESH_TOKEN": "1000.$abc",
		"BASE":                  "/srv",
		"WORKERS":               "8",
		"EMPTY":                 "",
		"PATTERN":               "*.bak",
	}
	tests := []struct {
		name  string
		src   string // after "inbox: /in\n" unless it sets inbox
		check func(c Config) string
		want  string // error substring; "" = must parse
	}{
		{"secrets from env", "zoho:\n  client_id: ${CRMDROP_CLIENT_ID}\n  client_secret: ${CRMDROP_CLIENT_SECRET}\n  refresh_token: ${CRMDROP_REFRESH_TOKEN}", func(c Config) string {
			// The secret's own "${ord}" is not expanded again.
			return eq(c.Zoho, Zoho{DataCenter: "com", APIVersion: "v2", ClientID: "1000.ID", ClientSecret: "pa$$w${ord}$", RefreshToken: "1000.$abc"})
		}, ""},
		{"literal dollar secret", "zoho:\n  client_secret: a$b$$c$\n  refresh_token: '$x'", func(c Config) string {
			return eq([]string{c.Zoho.ClientSecret, c.Zoho.RefreshToken}, []string{"a$b$$c$", "$x"})
		}, ""},
		{"lone dollar", "zoho:\n  client_secret: \"$\"", func(c Config) string { return eq(c.Zoho.ClientSecret, "$") }, ""},
		{"escaped", "zoho:\n  client_secret: \"x$${BASE}y\"", func(c Config) string { return eq(c.Zoho.ClientSecret, "x${BASE}y") }, ""},
		{"embedded", "state_dir: ${BASE}/state", func(c Config) string { return eq(c.StateDir, "/srv/state") }, ""},
		{"twice", "state_dir: ${BASE}${BASE}", func(c Config) string { return eq(c.StateDir, "/srv/srv") }, ""},
		{"unbraced untouched", "state_dir: $BASE/state", func(c Config) string { return eq(c.StateDir, "$BASE/state") }, ""},
		{"typed value", "workers: ${WORKERS}", func(c Config) string { return eq(c.Workers, 8) }, ""},
		{"empty var", "admin_listen: ${EMPTY}", func(c Config) string { return eq(c.AdminListen, "") }, ""},
		{"list item", "ignore: [\"${PATTERN}\", x]", func(c Config) string { return eq(c.Ignore, []string{"*.bak", "x"}) }, ""},
		{"single quoted", "state_dir: '${BASE}'", func(c Config) string { return eq(c.StateDir, "/srv") }, ""},
		{"undefined", "state_dir: ${NOPE}/x", nil, "config.yaml line 2: state_dir: environment variable NOPE is not set; set it in the environment or in the service's env file (service.env_file)"},
		{"undefined secret names the variable", "zoho:\n  client_secret: ${CRMDROP_SECRET_X}", nil, "config.yaml line 3: zoho.client_secret: environment variable CRMDROP_SECRET_X is not set"},
		{"undefined twice", "state_dir: ${A1}${A2}", nil, "environment variable A1 is not set; set it in the environment or in the service's env file (service.env_file)\nconfig.yaml line 2: state_dir: environment variable A2 is not set"},
		{"unterminated", "state_dir: ${BASE", nil, `config.yaml line 2: state_dir: has "${" without a closing "}"; write "$${" for a literal "${"`},
		{"bad name", "state_dir: ${1BASE}", nil, `config.yaml line 2: state_dir: "${1BASE}" is not a variable name`},
		{"empty name", "state_dir: ${}", nil, `config.yaml line 2: state_dir: "${}" is not a variable name`},
		{"undefined in list", "ignore:\n  - ok\n  - ${NOPE}", nil, "config.yaml line 4: ignore[1]: environment variable NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "inbox: /in\n" + tt.src + "\n"
			c, err := parse(t, src, env)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Parse(%q) = %v, want %q", src, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", src, err)
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("Parse(%q): %s", src, msg)
			}
		})
	}

	// A nil lookup means no variables at all.
	if _, err := Parse(strings.NewReader("inbox: ${HOME}\n"), nil); err == nil || !strings.Contains(err.Error(), "HOME is not set") {
		t.Errorf("Parse(nil lookup) = %v, want HOME not set", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	src := "inbox: /in\n# " + strings.Repeat("x", maxConfigSize) + "\n"
	if _, err := parse(t, src, nil); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("Parse(2 MiB) = %v, want too large", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "other") // an absolute path elsewhere
	tests := []struct {
		name string
		src  string
		want func(c *Config) // on Default()
		err  string
	}{
		{"relative inbox, default state", "inbox: in\n", func(c *Config) {
			c.Inbox = filepath.Join(dir, "in")
			c.StateDir = filepath.Join(dir, "state")
		}, ""},
		{"absolute kept, relative resolved", "inbox: " + abs + "/./in\nstate_dir: ../st\nlog:\n  file: logs/crmdrop.log\nservice:\n  env_file: crmdrop.env\n", func(c *Config) {
			c.Inbox = filepath.Join(abs, "in")
			c.StateDir = filepath.Join(filepath.Dir(dir), "st")
			c.Log.File = filepath.Join(dir, "logs", "crmdrop.log")
			c.Service.EnvFile = filepath.Join(dir, "crmdrop.env")
		}, ""},
		{"default state inside inbox", "inbox: .\n", nil, "config.yaml line 1: state_dir: " + filepath.Join(dir, "state") + " is inside the inbox " + dir},
		{"state inside inbox", "inbox: in\nworkers: 2\nstate_dir: in/.crmdrop\n", nil, "config.yaml line 3: state_dir: " + filepath.Join(dir, "in", ".crmdrop") + " is inside the inbox"},
		{"env", "inbox: ${CRMDROP_TEST_INBOX}\n", func(c *Config) {
			c.Inbox = filepath.Join(dir, "from-env")
			c.StateDir = filepath.Join(dir, "state")
		}, ""},
	}
	t.Setenv("CRMDROP_TEST_INBOX", "from-env")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			// Errors name the file as the user gave it.
			t.Chdir(dir)
			c, err := Load("config.yaml")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Load() = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(c, want) {
				t.Errorf("Load() = %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	want := "read config: open " + path + ": no such file or directory; pass -c with the path to config.yaml"
	if err.Error() != want {
		t.Errorf("Load(missing) = %q, want %q", err, want)
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crm.yaml")
	if err := os.WriteFile(path, []byte("inbox: /in\nworkers: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + " line 2: workers: must be between 1 and 64, got 0"; err == nil || err.Error() != want {
		t.Errorf("Load() = %v, want %q", err, want)
	}
}

// TestExample parses config.example.yaml and checks that it sets every key
// of Config, and to the default where there is one, so it cannot drift.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"CRMDROP_CLIENT_ID":     "1000.EXAMPLE",
		"CRMDROP_CLIENT_SECRET": "example-secret",
		"CRMDROP_REFRESH_TOKEN": "1000.example.token",
	}
	c, err := parse(t, string(data), env)
	if err != nil {
		t.Fatalf("Parse(config.example.yaml) = %v", err)
	}
	if c.Zoho.ClientID != env["CRMDROP_CLIENT_ID"] || c.Zoho.ClientSecret != env["CRMDROP_CLIENT_SECRET"] || c.Zoho.RefreshToken != env["CRMDROP_REFRESH_TOKEN"] {
		t.Errorf("example credentials = %+v, want them from ${CRMDROP_*}", c.Zoho)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := joinKey(prefix, n.Content[i].Value)
			inFile[k] = true
			walk(n.Content[i+1], k)
		}
	}
	walk(doc.Content[0], "")

	keys := schemaKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 30 {
		t.Fatalf("schemaKeys found only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !inFile[k] {
			t.Errorf("config.example.yaml lacks key %s", k)
		}
	}

	// Apart from the site-specific values, the example shows the defaults.
	got, want := c, Default()
	got.Inbox, got.StateDir, got.Zoho.ClientID, got.Zoho.ClientSecret, got.Zoho.RefreshToken = "", "", "", "", ""
	got.Ignore, got.CustomModules = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.yaml values differ from Default():\n got %+v\nwant %+v", got, want)
	}
}

// schemaKeys lists every key path of t, sections included.
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" || name == "-" {
			panic("field " + f.Name + " has no yaml name")
		}
		k := joinKey(prefix, name)
		keys = append(keys, k)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			keys = append(keys, schemaKeys(f.Type, k)...)
		}
	}
	return keys
}

func TestParseCapsProblems(t *testing.T) {
	src := "inbox: /in\n" + strings.Repeat("x: 1\n", maxProblems+7)
	_, err := parse(t, src, nil)
	if err == nil {
		t.Fatal("Parse() = nil, want problems")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 {
		t.Fatalf("Parse() gave %d lines, want %d", len(lines), maxProblems+1)
	}
	if got, want := lines[maxProblems], "config.yaml: and 7 more problems; is this the right file?"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	if got, want := lines[0], "config.yaml line 2: x: unknown key"; !strings.HasPrefix(got, want) {
		t.Errorf("first line = %q, want prefix %q", got, want)
	}
}
