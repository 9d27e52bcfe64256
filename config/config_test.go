package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parse runs Parse on src with env as the environment.
func parse(t *testing.T, src string, env map[string]string) (Config, error) {
	t.Helper()
	return Parse(strings.NewReader(src), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func TestDefault(t *testing.T) {
	want := Config{
		Zoho:           Zoho{DataCenter: "com", APIVersion: "v2"},
		Workers:        4,
		Settle:         5 * time.Second,
		RescanInterval: time.Minute,
		Watch:          "auto",
		AfterUpload:    "move",
		MaxFileSize:    100 * 1024 * 1024,
		Retry:          Retry{InitialDelay: 2 * time.Second, MaxDelay: 5 * time.Minute, BlockedProbe: 2 * time.Minute},
		AdminListen:    "127.0.0.1:9477",
		Service:        Service{Name: "crmdrop"},
		Log:            Log{Level: "info", Format: "text"},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}

	// The defaults are valid once the one required key is set.
	c := Default()
	if err := c.Validate(); err == nil || err.Error() != "inbox: required; set it to the folder staff drop files into" {
		t.Errorf("Default().Validate() = %v, want only the inbox problem", err)
	}
	c.Inbox = "/srv/inbox"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() with inbox = %v, want nil", err)
	}
}

// TestValidation covers every key with good and bad values. In each source
// inbox is on line 1, so the key under test starts on line 2.
func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		src   string                // after "inbox: /srv/in\n"
		want  string                // error substring; "" = must parse
		check func(c Config) string // for good values: what is wrong, or ""
	}{
		// workers
		{"workers 1", "workers: 1", "", func(c Config) string { return eq(c.Workers, 1) }},
		{"workers 64", "workers: 64", "", func(c Config) string { return eq(c.Workers, 64) }},
		{"workers 0", "workers: 0", "config.yaml line 2: workers: must be between 1 and 64, got 0", nil},
		{"workers 65", "workers: 65", "config.yaml line 2: workers: must be between 1 and 64, got 65", nil},
		{"workers text", "workers: four", `config.yaml line 2: workers: must be a whole number, got "four"`, nil},
		{"workers list", "workers: [1]", "config.yaml line 2: workers: must be a single value, not a list", nil},
		{"workers null", "workers:", "config.yaml line 2: workers: must be between 1 and 64, got 0", nil},
		// settle
		{"settle 0", "settle: 0s", "", func(c Config) string { return eq(c.Settle, time.Duration(0)) }},
		{"settle 250ms", "settle: 250ms", "", func(c Config) string { return eq(c.Settle, 250*time.Millisecond) }},
		{"settle negative", "settle: -1s", "config.yaml line 2: settle: must not be negative, got -1s", nil},
		{"settle no unit", "settle: 5", `config.yaml line 2: settle: must be a duration such as 5s, 10m or 1h30m, got "5"`, nil},
		// rescan_interval
		{"rescan 1s", "rescan_interval: 1s", "", func(c Config) string { return eq(c.RescanInterval, time.Second) }},
		{"rescan 10m", "rescan_interval: 10m", "", func(c Config) string { return eq(c.RescanInterval, 10*time.Minute) }},
		{"rescan too short", "rescan_interval: 500ms", "config.yaml line 2: rescan_interval: must be at least 1s, got 500ms", nil},
		// watch
		{"watch poll", "watch: poll", "", func(c Config) string { return eq(c.Watch, "poll") }},
		{"watch bad", "watch: events", `config.yaml line 2: watch: must be auto or poll, got "events"`, nil},
		// after_upload
		{"after delete", "after_upload: delete", "", func(c Config) string { return eq(c.AfterUpload, "delete") }},
		{"after keep", "after_upload: keep", "", func(c Config) string { return eq(c.AfterUpload, "keep") }},
		{"after bad", "after_upload: copy", `config.yaml line 2: after_upload: must be move, delete or keep, got "copy"`, nil},
		// max_file_size
		{"size MiB", "max_file_size: 100MiB", "", func(c Config) string { return eq(c.MaxFileSize, int64(100<<20)) }},
		{"size MB", "max_file_size: 20MB", "", func(c Config) string { return eq(c.MaxFileSize, int64(20_000_000)) }},
		{"size plain", "max_file_size: 1024", "", func(c Config) string { return eq(c.MaxFileSize, int64(1024)) }},
		{"size spaced", "max_file_size: 512 KiB", "", func(c Config) string { return eq(c.MaxFileSize, int64(512<<10)) }},
		{"size GiB", "max_file_size: 1GiB", "", func(c Config) string { return eq(c.MaxFileSize, int64(1<<30)) }},
		{"size 0", "max_file_size: 0", "config.yaml line 2: max_file_size: must be more than 0", nil},
		{"size negative", "max_file_size: -1MB", `config.yaml line 2: max_file_size: must be a size such as 100MiB`, nil},
		{"size unit", "max_file_size: 10XB", `config.yaml line 2: max_file_size: must be a size such as 100MiB or 20MB (units B, KB, MB, GB, KiB, MiB, GiB), got "10XB"`, nil},
		{"size overflow", "max_file_size: 99999999999GiB", `config.yaml line 2: max_file_size: is too large`, nil},
		// zoho.data_center
		{"dc eu", "zoho:\n  data_center: eu", "", func(c Config) string { return eq(c.Zoho.DataCenter, "eu") }},
		{"dc com.cn", "zoho:\n  data_center: com.cn", "", func(c Config) string { return eq(c.Zoho.DataCenter, "com.cn") }},
		{"dc bad", "zoho:\n  data_center: us", `config.yaml line 3: zoho.data_center: must be one of com, eu, in, com.au, jp, ca, sa, com.cn, got "us"`, nil},
		{"zoho scalar", "zoho: eu", `config.yaml line 2: zoho: must be a section of indented "key: value" lines, not a single value`, nil},
		// zoho.api_domain / accounts_url
		{"api https", "zoho:\n  api_domain: https://www.zohoapis.eu/", "", func(c Config) string { return eq(c.Zoho.APIDomain, "https://www.zohoapis.eu/") }},
		{"api loopback http", "zoho:\n  api_domain: http://127.0.0.1:8080", "", nil},
		{"api localhost http", "zoho:\n  accounts_url: http://localhost:1234", "", nil},
		{"api ipv6 loopback", "zoho:\n  accounts_url: 'http://[::1]:1234'", "", nil},
		{"api remote http", "zoho:\n  api_domain: http://www.zohoapis.com", "config.yaml line 3: zoho.api_domain: must use https (http is allowed only for a test server on this machine)", nil},
		{"api not absolute", "zoho:\n  api_domain: www.zohoapis.com", "config.yaml line 3: zoho.api_domain: must be an absolute URL such as https://www.zohoapis.eu", nil},
		{"api ftp", "zoho:\n  api_domain: ftp://www.zohoapis.com", "config.yaml line 3: zoho.api_domain: must start with https://", nil},
		{"api path", "zoho:\n  api_domain: https://www.zohoapis.com/crm/v2", "config.yaml line 3: zoho.api_domain: must be just https:// and a host name, without a path", nil},
		{"accounts path", "zoho:\n  accounts_url: https://accounts.zoho.com/oauth/v2/token", "config.yaml line 3: zoho.accounts_url: must be just https:// and a host name, without a path", nil},
		{"accounts query", "zoho:\n  accounts_url: https://accounts.zoho.com?x=1", "config.yaml line 3: zoho.accounts_url: must be just https:// and a host name, without user, query or fragment", nil},
		// zoho.api_version
		{"version v8", "zoho:\n  api_version: v8", "", func(c Config) string { return eq(c.Zoho.APIVersion, "v8") }},
		{"version v2.1", "zoho:\n  api_version: v2.1", "", nil},
		{"version bare", "zoho:\n  api_version: 2", `config.yaml line 3: zoho.api_version: must be a Zoho CRM API version such as v2, v2.1 or v8, got "2"`, nil},
		{"version v9", "zoho:\n  api_version: v9", `zoho.api_version: must be a Zoho CRM API version`, nil},
		{"version v1", "zoho:\n  api_version: v1", `zoho.api_version: must be a Zoho CRM API version`, nil},
		// credentials: optional, but no whitespace
		{"client id", "zoho:\n  client_id: 1000.ABC", "", func(c Config) string { return eq(c.Zoho.ClientID, "1000.ABC") }},
		{"client id space", "zoho:\n  client_id: 1000.ABC DEF", "config.yaml line 3: zoho.client_id: contains a space, tab or line break", nil},
		// custom_modules
		{"modules", "custom_modules: [Projects_X, A1]", "", func(c Config) string { return eq(c.CustomModules, []string{"Projects_X", "A1"}) }},
		{"module digit", "custom_modules: [Projects_X, 1abc]", `config.yaml line 2: custom_modules[1]: must be a module API name (a letter, then letters, digits or _), got "1abc"`, nil},
		{"module block", "custom_modules:\n  - Good\n  - bad name", `config.yaml line 4: custom_modules[1]: must be a module API name`, nil},
		{"modules scalar", "custom_modules: Projects_X", `config.yaml line 2: custom_modules: must be a list such as ["a", "b"], not a single value`, nil},
		// ignore
		{"ignore", `ignore: ["*.bak", "[a-z]*.tmp"]`, "", func(c Config) string { return eq(c.Ignore, []string{"*.bak", "[a-z]*.tmp"}) }},
		{"ignore bad glob", `ignore: ["*.bak", "[a-"]`, `config.yaml line 2: ignore[1]: "[a-" is not a valid glob`, nil},
		{"ignore empty", `ignore: [""]`, `config.yaml line 2: ignore[0]: must not be empty`, nil},
		// retry
		{"retry ok", "retry:\n  initial_delay: 1s\n  max_delay: 1s\n  blocked_probe: 30s", "", func(c Config) string {
			return eq(c.Retry, Retry{InitialDelay: time.Second, MaxDelay: time.Second, BlockedProbe: 30 * time.Second})
		}},
		{"retry initial 0", "retry:\n  initial_delay: 0s", "config.yaml line 3: retry.initial_delay: must be more than 0, got 0s", nil},
		{"retry max negative", "retry:\n  max_delay: -1s", "config.yaml line 3: retry.max_delay: must be more than 0, got -1s", nil},
		{"retry initial > max", "retry:\n  initial_delay: 10m\n  max_delay: 5m", "config.yaml line 4: retry.max_delay: must be at least retry.initial_delay (10m0s), got 5m0s", nil},
		{"retry initial > default max", "retry:\n  initial_delay: 10m", "config.yaml line 3: retry.max_delay: must be at least retry.initial_delay (10m0s), got 5m0s", nil},
		{"retry probe 0", "retry:\n  blocked_probe: 0s", "config.yaml line 3: retry.blocked_probe: must be more than 0, got 0s", nil},
		// admin_listen / admin_allow_remote
		{"admin off", `admin_listen: ""`, "", func(c Config) string { return eq(c.AdminListen, "") }},
		{"admin null", `admin_listen:`, "", func(c Config) string { return eq(c.AdminListen, "") }},
		{"admin localhost", "admin_listen: localhost:0", "", nil},
		{"admin ipv6", `admin_listen: "[::1]:9477"`, "", nil},
		{"admin remote allowed", "admin_listen: 0.0.0.0:9477\nadmin_allow_remote: true", "", func(c Config) string { return eq(c.AdminAllowRemote, true) }},
		{"admin remote yes", "admin_listen: :9477\nadmin_allow_remote: yes", "", nil},
		{"admin remote", "admin_listen: 0.0.0.0:9477", `config.yaml line 2: admin_listen: "0.0.0.0:9477" listens on host 0.0.0.0, reachable from other machines; use 127.0.0.1:9477, or set admin_allow_remote: true`, nil},
		{"admin all interfaces", "admin_listen: :9477", `admin_listen: ":9477" listens on every network interface`, nil},
		{"admin hostname", "admin_listen: crm.example.com:80", `config.yaml line 2: admin_listen: "crm.example.com:80" listens on host crm.example.com`, nil},
		{"admin no port", "admin_listen: 9477", `config.yaml line 2: admin_listen: must be host:port such as 127.0.0.1:9477, or "" to turn the admin endpoint off, got "9477"`, nil},
		{"admin bad port", "admin_listen: 127.0.0.1:99999", `config.yaml line 2: admin_listen: port must be a number from 0 to 65535, got "99999"`, nil},
		{"allow remote bad", "admin_allow_remote: maybe", `config.yaml line 2: admin_allow_remote: must be true or false, got "maybe"`, nil},
		// service
		{"service", "service:\n  name: crmdrop-2.test\n  display_name: CRM drop\n  description: Uploads\n  user: DOMAIN\\svc\n  env_file: /etc/crmdrop.env", "", func(c Config) string {
			return eq(c.Service, Service{Name: "crmdrop-2.test", DisplayName: "CRM drop", Description: "Uploads", User: `DOMAIN\svc`, EnvFile: "/etc/crmdrop.env"})
		}},
		{"service name empty", "service:\n  name: \"\"", `config.yaml line 3: service.name: must be letters, digits`, nil},
		{"service name space", "service:\n  name: my service", `config.yaml line 3: service.name: must be letters, digits, '.', '_' or '-' (starting with a letter or digit), got "my service"`, nil},
		{"service empty section", "service:", "", func(c Config) string { return eq(c.Service.Name, "crmdrop") }},
		// log
		{"log", "log:\n  level: debug\n  format: json\n  file: crmdrop.log", "", func(c Config) string {
			return eq(c.Log, Log{Level: "debug", Format: "json", File: "crmdrop.log"})
		}},
		{"log level", "log:\n  level: verbose", `config.yaml line 3: log.level: must be debug, info, warn or error, got "verbose"`, nil},
		{"log format", "log:\n  format: xml", `config.yaml line 3: log.format: must be text or json, got "xml"`, nil},
		// state_dir
		{"state outside", "state_dir: /var/lib/crmdrop", "", func(c Config) string { return eq(c.StateDir, "/var/lib/crmdrop") }},
		{"state inside", "state_dir: /srv/in/.state", "config.yaml line 2: state_dir: /srv/in/.state is inside the inbox /srv/in", nil},
		{"state is inbox", "state_dir: /srv/in/", "config.yaml line 2: state_dir: /srv/in/ is inside the inbox /srv/in", nil},
		{"state sibling", "state_dir: /srv/inbox-state", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "inbox: /srv/in\n" + tt.src + "\n"
			c, err := parse(t, src, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse(%q) = %v, want no error", src, err)
				}
				if tt.check != nil {
					if msg := tt.check(c); msg != "" {
						t.Error(msg)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", src, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", src, err, tt.want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Errorf("Parse(%q) reported %d problems, want 1:\n%v", src, n, err)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Parse(%q) returned %+v with an error, want the zero Config", src, c)
			}
		})
	}
}

// eq returns "" if got equals want, else what differs.
func eq[T any](got, want T) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	return fmt.Sprintf("got %+v, want %+v", got, want)
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Inbox = "/in"
	c.Workers = 0
	c.Log.Format = "xml"
	err := c.Validate()
	want := "workers: must be between 1 and 64, got 0\nlog.format: must be text or json, got \"xml\""
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %q, want %q", err, want)
	}
}

func TestValidateStateDirInsideInbox(t *testing.T) {
	tests := []struct {
		inbox, state string
		inside       bool
	}{
		{"/srv/in", "/srv/in", true},
		{"/srv/in", "/srv/in/state", true},
		{"/srv/in", "/srv/in/a/../state", true},
		{"/srv/in", "/srv/inbox", false},
		{"/srv/in", "/srv/state", false},
		{"/srv/in", "/srv/in/../state", false},
		{"in", "in/state", true},
		{"in", "state", false},
		{"in", "/srv/in/state", false}, // cannot tell: Load makes both absolute first
	}
	for _, tt := range tests {
		c := Default()
		c.Inbox, c.StateDir = tt.inbox, tt.state
		err := c.Validate()
		if got := err != nil && strings.Contains(err.Error(), "inside the inbox"); got != tt.inside {
			t.Errorf("Validate(inbox %q, state_dir %q) = %v, want inside=%v", tt.inbox, tt.state, err, tt.inside)
		}
	}
}

func TestRequireCredentials(t *testing.T) {
	tests := []struct {
		name string
		z    Zoho
		want []string // keys reported, in order
	}{
		{"all set", Zoho{ClientID: "id", ClientSecret: "s", RefreshToken: "r"}, nil},
		{"none", Zoho{}, []string{"zoho.client_id", "zoho.client_secret", "zoho.refresh_token"}},
		{"no secret", Zoho{ClientID: "id", RefreshToken: "r"}, []string{"zoho.client_secret"}},
		{"no token", Zoho{ClientID: "id", ClientSecret: "s"}, []string{"zoho.refresh_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Zoho: tt.z}
			err := c.RequireCredentials()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("RequireCredentials() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("RequireCredentials() = nil, want %v", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("RequireCredentials() = %q, want %d lines", err, len(tt.want))
			}
			for i, k := range tt.want {
				if !strings.HasPrefix(lines[i], k+": missing; ") {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], k+": missing; ")
				}
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	c := Config{Zoho: Zoho{ClientID: "id", ClientSecret: "sec", RefreshToken: "tok"}}
	if got, want := c.Secrets(), []string{"sec", "tok"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	c.Zoho.ClientSecret = ""
	if got, want := c.Secrets(), []string{"tok"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	if got := (Config{}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() of empty config = %q, want none", got)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr$t-Value-x"
	const token = "1000.refresh$tok"
	env := map[string]string{"CRMDROP_CLIENT_SECRET": secret, "CRMDROP_REFRESH_TOKEN": token}
	tests := []struct{ name, src string }{
		{"secret under another key", "inbox: /in\nwatch: ${CRMDROP_CLIENT_SECRET}\nzoho:\n  client_secret: ${CRMDROP_CLIENT_SECRET}\n  refresh_token: ${CRMDROP_REFRESH_TOKEN}\nlog:\n  level: ${CRMDROP_REFRESH_TOKEN}"},
		{"literal secret with space", "inbox: /in\nzoho:\n  client_secret: \"" + secret + " \"\n"},
		{"literal token with tab", "inbox: /in\nzoho:\n  refresh_token: \"" + token + "\\t\"\n"},
		{"undefined inside secret", "inbox: /in\nzoho:\n  client_secret: abc${UNDEFINED_VAR}def\n"},
		{"bad name inside secret", "inbox: /in\nzoho:\n  client_secret: abc${1x}def\n"},
		{"unterminated inside secret", "inbox: /in\nzoho:\n  refresh_token: abc${def\n"},
		{"secret as list", "inbox: /in\nzoho:\n  client_secret: [abcdef]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, env)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one", tt.src)
			}
			for _, s := range []string{secret, token, "abc", "def", "UNDEFINED_VAR", "1x"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Parse error %q contains %q", err, s)
				}
			}
		})
	}

	// Validate redacts too.
	c := Default()
	c.Inbox = "/in"
	c.Zoho.ClientSecret = secret
	c.Log.Level = secret
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("Validate() = %q, want a log.level problem without the secret", err)
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		z                 Zoho
		accounts, apiHost string
	}{
		{Zoho{DataCenter: "com"}, "https://accounts.zoho.com", "https://www.zohoapis.com"},
		{Zoho{DataCenter: "eu"}, "https://accounts.zoho.eu", "https://www.zohoapis.eu"},
		{Zoho{DataCenter: "in"}, "https://accounts.zoho.in", "https://www.zohoapis.in"},
		{Zoho{DataCenter: "com.au"}, "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"},
		{Zoho{DataCenter: "jp"}, "https://accounts.zoho.jp", "https://www.zohoapis.jp"},
		{Zoho{DataCenter: "ca"}, "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"},
		{Zoho{DataCenter: "sa"}, "https://accounts.zoho.sa", "https://www.zohoapis.sa"},
		{Zoho{DataCenter: "com.cn"}, "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"},
		{Zoho{DataCenter: "eu", AccountsURL: "http://127.0.0.1:5000/"}, "http://127.0.0.1:5000", "https://www.zohoapis.eu"},
		{Zoho{DataCenter: "eu", APIDomain: "https://crm.example.com//"}, "https://accounts.zoho.eu", "https://crm.example.com"},
		{Zoho{DataCenter: "jp", AccountsURL: "https://a.test", APIDomain: "https://b.test"}, "https://a.test", "https://b.test"},
		{Zoho{DataCenter: "us"}, "", ""},
		{Zoho{DataCenter: "us", APIDomain: "https://b.test"}, "", "https://b.test"},
	}
	for _, tt := range tests {
		acc, api := tt.z.Endpoints()
		if acc != tt.accounts || api != tt.apiHost {
			t.Errorf("%+v.Endpoints() = %q, %q, want %q, %q", tt.z, acc, api, tt.accounts, tt.apiHost)
		}
		if _, _, known := dataCenter(tt.z.DataCenter); known != strings.Contains(dataCenters, tt.z.DataCenter) {
			t.Errorf("data center %q: known=%v, but the list in messages says otherwise", tt.z.DataCenter, known)
		}
	}
}

func TestEveryDataCenterValidates(t *testing.T) {
	for dc := range strings.SplitSeq(dataCenters, ", ") {
		c := Default()
		c.Inbox = "/in"
		c.Zoho.DataCenter = dc
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(data_center %q) = %v, want nil", dc, err)
		}
		if acc, api := c.Zoho.Endpoints(); !strings.HasPrefix(acc, "https://accounts.") || !strings.HasPrefix(api, "https://www.zohoapis.") {
			t.Errorf("data_center %q: Endpoints() = %q, %q", dc, acc, api)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"10B", 10, true},
		{"1KB", 1000, true},
		{"1kb", 1000, true},
		{"1KiB", 1024, true},
		{"3MB", 3_000_000, true},
		{"100MiB", 100 << 20, true},
		{"2GB", 2_000_000_000, true},
		{"2GiB", 2 << 30, true},
		{" 7 MiB ", 7 << 20, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1.5MiB", 0, false},
		{"-1", 0, false},
		{"1TB", 0, false},
		{"1 M", 0, false},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"9007199254740993KiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v, want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestProblemsJoined(t *testing.T) {
	err := joinProblems([]problem{{key: "b", msg: "x"}, {line: 3, key: "a", msg: "y"}}, "f.yaml", map[string]int{"b": 9}, nil)
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("joinProblems() = %v, want an errors.Join of 2", err)
	}
	if want := "f.yaml line 3: a: y\nf.yaml line 9: b: x"; err.Error() != want {
		t.Errorf("joinProblems() = %q, want %q", err, want)
	}
}
