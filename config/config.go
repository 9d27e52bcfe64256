// Package config is crmdrop's one configuration schema: its defaults, the
// strict YAML parser with ${VAR} expansion (parse.go) and the validation
// rules. It imports no other crmdrop package.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is the whole contents of config.yaml (SPEC §3). Every int64 field is
// a byte size and every time.Duration a Go duration: the parser relies on that.
// A Config is a plain value: copy it freely; it holds no locks or handles.
type Config struct {
	Inbox            string        `yaml:"inbox"`
	StateDir         string        `yaml:"state_dir"`
	Zoho             Zoho          `yaml:"zoho"`
	CustomModules    []string      `yaml:"custom_modules"`
	Workers          int           `yaml:"workers"`
	Settle           time.Duration `yaml:"settle"`
	RescanInterval   time.Duration `yaml:"rescan_interval"`
	Watch            string        `yaml:"watch"`         // "auto" | "poll"
	AfterUpload      string        `yaml:"after_upload"`  // "move" | "delete" | "keep"
	MaxFileSize      int64         `yaml:"max_file_size"` // bytes; YAML "100MiB"
	Ignore           []string      `yaml:"ignore"`
	Retry            Retry         `yaml:"retry"`
	AdminListen      string        `yaml:"admin_listen"`
	AdminAllowRemote bool          `yaml:"admin_allow_remote"` // must be true for a non-loopback admin_listen
	Service          Service       `yaml:"service"`
	Log              Log           `yaml:"log"`
}

// Zoho says which Zoho data center and OAuth client crmdrop uses.
// ClientSecret and RefreshToken are secrets: never log or print them
// (Config.Secrets lists them for a redacting logger).
type Zoho struct {
	DataCenter   string `yaml:"data_center"`
	APIDomain    string `yaml:"api_domain"`   // "" = from DataCenter (or the token's api_domain)
	AccountsURL  string `yaml:"accounts_url"` // "" = from DataCenter
	APIVersion   string `yaml:"api_version"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	RefreshToken string `yaml:"refresh_token"`
}

// Retry holds the backoff bounds for transient failures and the probe
// interval while a global error blocks every upload.
type Retry struct {
	InitialDelay time.Duration `yaml:"initial_delay"`
	MaxDelay     time.Duration `yaml:"max_delay"`
	BlockedProbe time.Duration `yaml:"blocked_probe"`
}

// Service configures the OS service registration (systemd unit or Windows
// service).
type Service struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	Description string `yaml:"description"`
	User        string `yaml:"user"`     // "" = the service manager's default account
	EnvFile     string `yaml:"env_file"` // KEY=value lines the service's environment is loaded from
}

// Log configures the daemon's logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
	File   string `yaml:"file"`   // "" = stderr (or the system log under a service manager)
}

// Default returns the configuration used for every key config.yaml leaves
// out. Inbox is empty (it is required); StateDir is empty so that Load can
// put it beside the config file.
func Default() Config {
	return Config{
		Zoho: Zoho{
			DataCenter: "com",
			APIVersion: "v2",
		},
		Workers:        4,
		Settle:         5 * time.Second,
		RescanInterval: time.Minute,
		Watch:          "auto",
		AfterUpload:    "move",
		MaxFileSize:    100 << 20, // the Attachments API's documented limit
		Retry: Retry{
			InitialDelay: 2 * time.Second,
			MaxDelay:     5 * time.Minute,
			BlockedProbe: 2 * time.Minute,
		},
		AdminListen: "127.0.0.1:9477",
		Service:     Service{Name: "crmdrop"},
		Log:         Log{Level: "info", Format: "text"},
	}
}

// problem is one thing wrong with a configuration. key is the dotted key
// path ("retry.max_delay", "ignore[2]"); near names another key whose line
// locates the problem when key itself is not in the file.
type problem struct {
	line int // 0 when not known
	key  string
	near string
	msg  string
}

// text formats p as one line: "config.yaml line 7: workers: msg", or
// "workers: msg" when there is no file (Validate).
func (p problem) text(file string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if p.line > 0 {
			fmt.Fprintf(&b, " line %d", p.line)
		}
		b.WriteString(": ")
	}
	if p.key != "" {
		b.WriteString(p.key)
		b.WriteString(": ")
	}
	b.WriteString(p.msg)
	return b.String()
}

// Validate reports every problem with c at once (errors.Join, one line per
// problem, each naming its key). It does not require the Zoho credentials
// (see RequireCredentials) and never includes secret values. It does not
// modify c.
func (c *Config) Validate() error {
	return joinProblems(c.problems(), "", nil, c.Secrets())
}

// RequireCredentials reports, by key, each of zoho.client_id,
// zoho.client_secret and zoho.refresh_token that is empty. Commands that talk
// to Zoho call it after Validate; `demo` and `auth` run without them.
func (c *Config) RequireCredentials() error {
	var errs []error
	if c.Zoho.ClientID == "" {
		errs = append(errs, errors.New("zoho.client_id: missing; copy the Client ID of your Self Client from the Zoho API Console (e.g. client_id: ${CRMDROP_CLIENT_ID})"))
	}
	if c.Zoho.ClientSecret == "" {
		errs = append(errs, errors.New("zoho.client_secret: missing; copy the Client Secret of your Self Client from the Zoho API Console (e.g. client_secret: ${CRMDROP_CLIENT_SECRET})"))
	}
	if c.Zoho.RefreshToken == "" {
		errs = append(errs, errors.New(`zoho.refresh_token: missing; run "crmdrop auth --grant-token <code>" to get one (e.g. refresh_token: ${CRMDROP_REFRESH_TOKEN})`))
	}
	return errors.Join(errs...)
}

// Secrets returns the non-empty secret values of c (client_secret,
// refresh_token) so that a logger can redact them wherever they appear.
func (c Config) Secrets() []string {
	var s []string
	for _, v := range []string{c.Zoho.ClientSecret, c.Zoho.RefreshToken} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// Endpoints returns the effective accounts server and API domain, without a
// trailing slash: the explicit accounts_url / api_domain if set, else the
// data center's. For an unknown data center (which Validate rejects) the
// non-overridden URL is "". Callers that must know whether the API domain
// was pinned (so the token's api_domain must not replace it) look at
// z.APIDomain != "".
func (z Zoho) Endpoints() (accountsURL, apiDomain string) {
	accountsURL, apiDomain, _ = dataCenter(z.DataCenter)
	if z.AccountsURL != "" {
		accountsURL = z.AccountsURL
	}
	if z.APIDomain != "" {
		apiDomain = z.APIDomain
	}
	return strings.TrimRight(accountsURL, "/"), strings.TrimRight(apiDomain, "/")
}

// dataCenters lists the valid data_center values, for error messages.
const dataCenters = "com, eu, in, com.au, jp, ca, sa, com.cn"

// dataCenter maps a data_center to its accounts server and API domain (SPEC §2).
func dataCenter(dc string) (accountsURL, apiDomain string, ok bool) {
	switch dc {
	case "com", "eu", "in", "com.au", "jp", "sa", "com.cn":
		return "https://accounts.zoho." + dc, "https://www.zohoapis." + dc, true
	case "ca":
		// Canada runs on a separate domain for accounts.
		return "https://accounts.zohocloud.ca", "https://www.zohoapis.ca", true
	}
	return "", "", false
}

// problems checks every rule; it is the single source for Validate and Parse.
func (c *Config) problems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(c.Inbox) == "" {
		add("inbox", "required; set it to the folder staff drop files into")
	}
	if c.Inbox != "" && c.StateDir != "" && filepath.IsAbs(c.Inbox) == filepath.IsAbs(c.StateDir) && within(c.Inbox, c.StateDir) {
		ps = append(ps, problem{key: "state_dir", near: "inbox", msg: fmt.Sprintf(
			"%s is inside the inbox %s, where staff could delete the ledger; set state_dir to a folder outside the inbox",
			c.StateDir, c.Inbox)})
	}

	z := c.Zoho
	if _, _, ok := dataCenter(z.DataCenter); !ok {
		add("zoho.data_center", "must be one of %s, got %q", dataCenters, z.DataCenter)
	}
	if msg := checkURL(z.APIDomain, "https://www.zohoapis.eu"); msg != "" {
		add("zoho.api_domain", "%s", msg)
	}
	if msg := checkURL(z.AccountsURL, "https://accounts.zoho.eu"); msg != "" {
		add("zoho.accounts_url", "%s", msg)
	}
	if !validAPIVersion(z.APIVersion) {
		add("zoho.api_version", "must be a Zoho CRM API version such as v2, v2.1 or v8, got %q", z.APIVersion)
	}
	// The credentials are optional here, but a stray space or line break (an
	// env file with CRLF line ends) would otherwise surface as a baffling
	// invalid_client from Zoho. The values themselves are never printed.
	for _, s := range []struct{ key, v string }{
		{"zoho.client_id", z.ClientID},
		{"zoho.client_secret", z.ClientSecret},
		{"zoho.refresh_token", z.RefreshToken},
	} {
		if strings.IndexFunc(s.v, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			add(s.key, "contains a space, tab or line break; check the value (and the env file's line endings)")
		}
	}

	for i, m := range c.CustomModules {
		if !validAPIName(m) {
			add(fmt.Sprintf("custom_modules[%d]", i), "must be a module API name (a letter, then letters, digits or _), got %q", m)
		}
	}
	if c.Workers < 1 || c.Workers > 64 {
		add("workers", "must be between 1 and 64, got %d", c.Workers)
	}
	if c.Settle < 0 {
		add("settle", "must not be negative, got %s", c.Settle)
	}
	if c.RescanInterval < time.Second {
		add("rescan_interval", "must be at least 1s, got %s", c.RescanInterval)
	}
	if c.Watch != "auto" && c.Watch != "poll" {
		add("watch", "must be auto or poll, got %q", c.Watch)
	}
	if c.AfterUpload != "move" && c.AfterUpload != "delete" && c.AfterUpload != "keep" {
		add("after_upload", "must be move, delete or keep, got %q", c.AfterUpload)
	}
	if c.MaxFileSize <= 0 {
		add("max_file_size", "must be more than 0, e.g. 100MiB, got %d", c.MaxFileSize)
	}
	for i, g := range c.Ignore {
		key := fmt.Sprintf("ignore[%d]", i)
		if g == "" {
			add(key, "must not be empty")
		} else if _, err := path.Match(g, ""); err != nil {
			add(key, "%q is not a valid glob (check [ ] and \\ in it)", g)
		}
	}

	r := c.Retry
	if r.InitialDelay <= 0 {
		add("retry.initial_delay", "must be more than 0, got %s", r.InitialDelay)
	}
	if r.MaxDelay <= 0 {
		add("retry.max_delay", "must be more than 0, got %s", r.MaxDelay)
	}
	if r.InitialDelay > 0 && r.MaxDelay > 0 && r.InitialDelay > r.MaxDelay {
		ps = append(ps, problem{key: "retry.max_delay", near: "retry.initial_delay", msg: fmt.Sprintf(
			"must be at least retry.initial_delay (%s), got %s", r.InitialDelay, r.MaxDelay)})
	}
	if r.BlockedProbe <= 0 {
		add("retry.blocked_probe", "must be more than 0, got %s", r.BlockedProbe)
	}

	if c.AdminListen != "" {
		if msg := checkListen(c.AdminListen, c.AdminAllowRemote); msg != "" {
			add("admin_listen", "%s", msg)
		}
	}

	if !validServiceName(c.Service.Name) {
		add("service.name", "must be letters, digits, '.', '_' or '-' (starting with a letter or digit), got %q", c.Service.Name)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return ps
}

// within reports whether child is dir or inside it. Both must be absolute,
// or both relative to the same folder.
func within(dir, child string) bool {
	dir, child = filepath.Clean(dir), filepath.Clean(child)
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		// Case-insensitive file systems by default.
		dir, child = strings.ToLower(dir), strings.ToLower(child)
	}
	rel, err := filepath.Rel(dir, child)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// checkURL returns why s is not a usable base URL, or "" if it is (or unset).
func checkURL(s, example string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL such as " + example
	}
	// The value is not echoed below: user info in a URL may hold a password.
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "must start with https://, e.g. " + example
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "must use https (http is allowed only for a test server on this machine)"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "must be just https:// and a host name, without user, query or fragment, e.g. " + example
	case u.Path != "" && u.Path != "/":
		// crmdrop appends /crm/v2/... and /oauth/v2/token itself; a pasted
		// full endpoint would double them.
		return "must be just https:// and a host name, without a path, e.g. " + example
	}
	return ""
}

// checkListen returns why addr is not a usable admin_listen, or "".
func checkListen(addr string, allowRemote bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf(`must be host:port such as 127.0.0.1:9477, or "" to turn the admin endpoint off, got %q`, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	if !isLoopback(host) && !allowRemote {
		where := "host " + host
		if host == "" {
			where = "every network interface"
		}
		return fmt.Sprintf("%q listens on %s, reachable from other machines; use 127.0.0.1:%s, or set admin_allow_remote: true to expose it on purpose", addr, where, port)
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validAPIVersion accepts v2 to v8 and their point releases (Zoho has v2.1).
func validAPIVersion(v string) bool {
	if len(v) < 2 || v[0] != 'v' || v[1] < '2' || v[1] > '8' {
		return false
	}
	rest := v[2:]
	return rest == "" || (len(rest) == 2 && rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9')
}

// validAPIName matches Zoho module API names: [A-Za-z][A-Za-z0-9_]*.
func validAPIName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return s != ""
}

// validServiceName keeps to the characters both systemd unit names and
// Windows service names accept.
func validServiceName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return s != ""
}
