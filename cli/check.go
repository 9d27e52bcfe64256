package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"crmdrop/admin"
	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/inbox"
	"crmdrop/store"
	"crmdrop/zoho"
)

// checkNetTimeout bounds each of check's calls to Zoho.
const checkNetTimeout = 30 * time.Second

// cmdCheck validates what `run` needs, one line per check, without changing anything:
// probe files are created and removed at once, and missing folders are only tested for
// whether they could be created (a check run as root must not leave root-owned folders
// the service's user cannot write to). Exit 0 when nothing FAILed (warnings allowed),
// 1 when something did, 2 when the configuration does not load.
func cmdCheck(env Env, args []string) int {
	fs, cfgPath := newFlags(env, "check")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "crmdrop: check takes no arguments, got %q; usage: crmdrop check [-c config.yaml]\n", fs.Arg(0))
		return exitUsage
	}
	// The credentials are optional here so that a missing one is reported as a FAIL
	// line among the others rather than stopping everything.
	lc, ok := adminConfig(env, *cfgPath, credsOptional)
	if !ok {
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	c := &checker{w: env.Stdout, secrets: lc.cfg.Secrets()}
	c.run(ctx, lc)
	if c.failed > 0 {
		fmt.Fprintf(env.Stderr, "crmdrop: %d of %d checks failed (the FAIL lines above say what to do)\n", c.failed, c.total)
		return exitFailure
	}
	return exitOK
}

type checker struct {
	w       io.Writer
	secrets []string
	total   int
	failed  int
}

// line prints one check's result; status is "ok", "warn", "FAIL" or "skip". Secrets are
// masked on the way out, whatever produced the text.
func (c *checker) line(status, format string, args ...any) {
	c.total++
	if status == "FAIL" {
		c.failed++
	}
	msg := cellText(fmt.Sprintf(format, args...)) // an error text may hold line breaks
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	fmt.Fprintf(c.w, "%-6s%s\n", status, msg)
}

func (c *checker) run(ctx context.Context, lc loadedConfig) {
	cfg := lc.cfg
	c.line("ok", "config %s", lc.path)
	c.permissions(lc)
	inboxOK := c.inbox(cfg)
	c.stateDir(cfg)
	c.files(lc)
	c.ledger(ctx, cfg)
	c.zoho(ctx, lc, inboxOK)
}

// permissions warns about secrets other users can read. Windows ACLs do not map onto
// mode bits, so it says nothing there.
func (c *checker) permissions(lc loadedConfig) {
	if runtime.GOOS == "windows" {
		return
	}
	if err := config.CheckConfigPerm(lc.path, lc.cfg); err != nil {
		c.line("warn", "%v", err)
	}
	if f := lc.cfg.Service.EnvFile; f != "" && lc.envErr == nil {
		if err := config.CheckEnvFilePerm(f); err != nil {
			c.line("warn", "%v", err)
		}
	}
}

// files checks the files the service reads or writes besides the inbox and state_dir.
func (c *checker) files(lc loadedConfig) {
	cfg := lc.cfg
	switch f := cfg.Service.EnvFile; {
	case f == "":
	case errors.Is(lc.envErr, fs.ErrNotExist):
		// `run` stops at a missing env file.
		c.line("FAIL", "service.env_file %s: does not exist; create it (crmdrop auth --write does) or clear service.env_file", f)
	case lc.envErr != nil:
		c.line("warn", "service.env_file %s: %v; this user cannot check it (the service reads it as its own user, or systemd as root)", f, cause(lc.envErr))
	default:
		c.line("ok", "service.env_file %s", f)
	}
	if f := cfg.Log.File; f != "" {
		dir := filepath.Dir(f)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			dir = existingParent(dir)
		}
		err := probeWrite(dir) // rotation renames and creates files beside it
		if _, serr := os.Stat(f); err == nil && serr == nil {
			// Opened for appending and closed at once: nothing is written.
			var lf *os.File
			if lf, err = os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				lf.Close()
			}
		}
		if err != nil {
			c.line("FAIL", "log.file %s: cannot write it (%v); give the service's user write access, or change log.file", f, cause(err))
		} else {
			c.line("ok", "log.file %s (writable)", f)
		}
	}
}

// inbox checks the inbox and the two folders crmdrop moves files into; it reports
// whether the inbox itself is usable.
func (c *checker) inbox(cfg config.Config) bool {
	dir := cfg.Inbox
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.line("FAIL", `inbox %s: does not exist; create it or fix "inbox"`, dir)
		return false
	case err != nil:
		c.line("FAIL", "inbox %s: %v; run crmdrop as a user that may open it", dir, cause(err))
		return false
	case !fi.IsDir():
		c.line("FAIL", `inbox %s: is a file, not a folder; fix "inbox"`, dir)
		return false
	}
	if err := probeWrite(dir); err != nil {
		c.line("FAIL", "inbox %s: cannot create files in it (%v); give the service's user write access", dir, cause(err))
		return false
	}
	c.line("ok", "inbox %s (writable)", dir)
	subs := []string{inbox.FailedDir}
	if cfg.AfterUpload == "move" {
		subs = []string{inbox.UploadedDir, inbox.FailedDir}
	}
	for _, sub := range subs {
		p := filepath.Join(dir, sub)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.line("ok", "%s (will be created)", p)
		case err != nil:
			c.line("FAIL", "%s: %v; give the service's user access to it", p, cause(err))
		case !fi.IsDir():
			c.line("FAIL", "%s is a file, but crmdrop needs a folder there; rename or remove it", p)
		default:
			if err := probeWrite(p); err != nil {
				c.line("FAIL", "%s: cannot create files in it (%v); give the service's user write access", p, cause(err))
			} else {
				c.line("ok", "%s (writable)", p)
			}
		}
	}
	return true
}

func (c *checker) stateDir(cfg config.Config) {
	dir := cfg.StateDir
	if insideDir(cfg.Inbox, dir) {
		c.line("FAIL", "state_dir %s is inside the inbox %s, where staff could delete the ledger; set state_dir to a folder outside the inbox", dir, cfg.Inbox)
		return
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := existingParent(dir)
		if err := probeWrite(parent); err != nil {
			c.line("FAIL", "state_dir %s: does not exist and cannot be created in %s (%v); create it for the service's user", dir, parent, cause(err))
		} else {
			c.line("ok", "state_dir %s (will be created)", dir)
		}
	case err != nil:
		c.line("FAIL", "state_dir %s: %v; give the service's user access to it", dir, cause(err))
	case !fi.IsDir():
		c.line("FAIL", `state_dir %s: is a file, not a folder; fix "state_dir"`, dir)
	default:
		if err := probeWrite(dir); err != nil {
			c.line("FAIL", "state_dir %s: cannot create files in it (%v); give the service's user write access", dir, cause(err))
		} else {
			c.line("ok", "state_dir %s (writable)", dir)
		}
	}
}

// ledger checks that nothing but a running daemon holds the ledger.
func (c *checker) ledger(ctx context.Context, cfg config.Config) {
	path := daemon.LedgerPath(cfg)
	led, err := store.Open(path, store.Options{ReadOnly: true, Timeout: ledgerWait})
	switch {
	case err == nil:
		led.Close()
		c.line("ok", "ledger %s (not in use: the daemon is not running)", path)
	case errors.Is(err, fs.ErrNotExist):
		c.line("ok", "ledger %s (not created yet: the daemon creates it when it first runs)", path)
	case errors.Is(err, store.ErrLocked):
		if cfg.AdminListen == "" {
			c.line("warn", "ledger %s is in use by another process; admin_listen is empty, so check cannot ask whether that is the crmdrop daemon", path)
			return
		}
		if _, ferr := admin.Fetch(ctx, cfg.AdminListen); errors.Is(ferr, admin.ErrUnreachable) {
			c.line("FAIL", "ledger %s is in use by another process, but no crmdrop daemon answers at %s; stop that process (another crmdrop with this state_dir?)", path, cfg.AdminListen)
			return
		}
		c.line("ok", "ledger %s (in use by the running daemon at %s)", path, cfg.AdminListen)
	default:
		c.line("FAIL", "%v", err)
	}
}

// zoho checks the credentials with one token refresh and one read call.
//
// The client has no token cache on purpose: a cached token would prove only that the
// refresh token worked when it was minted, not that it still does (it may have been
// revoked since). The price is one mint of the ten Zoho allows per ten minutes.
func (c *checker) zoho(ctx context.Context, lc loadedConfig, inboxOK bool) {
	cfg := lc.cfg
	if err := cfg.RequireCredentials(); err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			key, _, _ := strings.Cut(l, ":")
			if slices.Contains(lc.unresolved, key) {
				l = key + ": refers to an environment variable that is set neither in the environment nor in service.env_file; set it there (or run check as the service's user)"
			}
			c.line("FAIL", "%s", l)
		}
		c.line("skip", "zoho token refresh and read: the credentials are missing")
		return
	}
	// No token cache: check must prove the refresh token works now.
	accounts, _ := cfg.Zoho.Endpoints()
	client, err := zoho.New(daemon.ZohoOptions(cfg))
	if err != nil {
		c.line("FAIL", "zoho: %v", err)
		return
	}
	tctx, cancel := context.WithTimeout(ctx, checkNetTimeout)
	_, err = client.Token(tctx)
	cancel()
	if err != nil {
		c.line("FAIL", "zoho token refresh at %s: %s", accounts, zohoProblem(err, accounts))
		c.line("skip", "zoho read: no access token")
		return
	}
	c.line("ok", "zoho token refresh at %s", accounts)

	module := "Leads"
	if inboxOK {
		module = inboxModule(cfg)
	}
	rctx, cancel := context.WithTimeout(ctx, checkNetTimeout)
	err = client.Ping(rctx, module)
	cancel()
	if err != nil {
		c.line("FAIL", "zoho read (%s records, API %s): %s", module, cfg.Zoho.APIVersion, readProblem(err, module))
		return
	}
	c.line("ok", "zoho read (%s records, API %s)", module, cfg.Zoho.APIVersion)
}

// inboxModule is the module the read call asks for: the first module folder in the
// inbox, whose read access crmdrop will need anyway; Leads when there is none.
func inboxModule(cfg config.Config) string {
	entries, err := os.ReadDir(cfg.Inbox)
	if err != nil {
		return "Leads"
	}
	layout := inbox.NewLayout(cfg.CustomModules)
	for _, e := range entries { // ReadDir sorts by name
		if !e.IsDir() || inbox.Skip(e.Name(), true, cfg.Ignore) {
			continue
		}
		if t, err := layout.Parse(e.Name() + "/1/x"); err == nil {
			return t.Module
		}
	}
	return "Leads"
}

// zohoProblem says what a failed token refresh means and what to do.
func zohoProblem(err error, accounts string) string {
	msg := strings.TrimPrefix(err.Error(), "zoho: ")
	var te *zoho.TokenError
	var ne *zoho.NetError
	switch {
	case errors.As(err, &te):
		return msg
	case errors.As(err, &ne):
		return msg + "; check the network (and any proxy) and that zoho.data_center or zoho.accounts_url is right"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within %s; check the network and zoho.accounts_url", accounts, checkNetTimeout)
	}
	return msg
}

// readProblem says what a failed read call means and what to do.
func readProblem(err error, module string) string {
	var ae *zoho.APIError
	if errors.As(err, &ae) {
		switch ae.Code {
		case "OAUTH_SCOPE_MISMATCH":
			return "the refresh token's scope does not cover " + module + "; generate a new grant token with scope ZohoCRM.modules.ALL and run crmdrop auth"
		case "NO_PERMISSION":
			return "the Zoho user who generated the grant token may not read " + module + "; use a user whose profile can read records and attach files"
		case "INVALID_MODULE":
			return "this Zoho CRM org has no module " + module + "; check the module folder's name or custom_modules"
		case "INVALID_TOKEN", "AUTHENTICATION_FAILURE":
			return "Zoho CRM refused the new access token (" + ae.Code + "); check that zoho.api_domain or zoho.data_center matches the accounts server"
		}
	}
	var ne *zoho.NetError
	if errors.As(err, &ne) {
		return strings.TrimPrefix(err.Error(), "zoho: ") + "; check the network (and any proxy) and zoho.api_domain"
	}
	return strings.TrimPrefix(err.Error(), "zoho: ")
}

// probeWrite proves dir is writable by creating and removing a file. Its name starts
// with "." so that the watcher never looks at it.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".crmdrop-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// existingParent returns the nearest folder above dir that exists.
func existingParent(dir string) string {
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		if fi, err := os.Stat(parent); err == nil && fi.IsDir() {
			return parent
		}
		dir = parent
	}
}

// insideDir reports whether child is dir or inside it, after resolving symbolic links
// (a state_dir reached through a link into the inbox is still inside it).
func insideDir(dir, child string) bool {
	resolve := func(p string) string {
		p = filepath.Clean(p)
		// Resolve the longest existing prefix: child may not exist yet.
		rest := ""
		for {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Join(r, rest)
			}
			parent := filepath.Dir(p)
			if parent == p {
				return filepath.Join(p, rest)
			}
			rest = filepath.Join(filepath.Base(p), rest)
			p = parent
		}
	}
	d, c := resolve(dir), resolve(child)
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		d, c = strings.ToLower(d), strings.ToLower(c)
	}
	rel, err := filepath.Rel(d, c)
	return err == nil && (rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))))
}

// cause drops the "open /x/y:" layer of a *PathError, which the line already names.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Loading the configuration for the admin commands.

// credsNeed says which Zoho credentials a command needs from the configuration.
type credsNeed int

const (
	credsOptional credsNeed = iota // status, list, retry; check reports them itself
	credsClient                    // auth: client_id and client_secret, not refresh_token
)

// loadedConfig is a configuration as an admin command loaded it.
type loadedConfig struct {
	cfg        config.Config
	path       string   // the config file, absolute
	data       []byte   // its text
	unresolved []string // credential keys ("zoho.refresh_token") whose ${VAR} is set nowhere; now ""
	envErr     error    // service.env_file is set but missing or unreadable by this user
}

// unsetVar stands in for a ${VAR} set nowhere while the configuration is parsed, so
// that a command that does not need that key still runs. It is printable and has no
// spaces, so that the credential checks of config.Validate accept it.
const unsetVar = "crmdrop-unset-variable-6a1f"

// adminConfig loads the configuration as the admin commands (check, auth, status, list,
// retry) see it. A ${VAR} is looked up in the process environment, then in
// service.env_file (read with config.LoadEnvFile, as `run` does, but into a map: the
// process environment is left alone), so that an admin's shell without the service's
// secrets can still run them. A missing or unreadable env file is tolerated (noted in
// envErr): these commands may run before it exists (auth --write creates it) or as
// another user. Credentials the command can do without (need) may be set nowhere:
// they come back "" and named in unresolved. Any other problem prints the
// configuration's own lines (file, line, key) on stderr and returns false: exit 2.
func adminConfig(env Env, path string, need credsNeed) (loadedConfig, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return loadedConfig{}, printConfigErr(env, path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		// config.Load says it best (and tells what to do).
		_, ok := loadConfig(env, path)
		return loadedConfig{}, ok
	}
	envFile, err := config.EnvFile(path)
	if err != nil {
		return loadedConfig{}, printConfigErr(env, path, err)
	}
	vars := map[string]string{}
	var envErr error
	if envFile != "" {
		err := config.LoadEnvFile(envFile, func(k, v string) error { vars[k] = v; return nil }, os.LookupEnv)
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
			envErr = err
		case err != nil:
			return loadedConfig{}, printConfigErr(env, path, fmt.Errorf("%w; fix it or clear service.env_file in %s", err, filepath.Base(path)))
		}
	}

	cfg, err := config.LoadWith(path, lookup(vars, true))
	var unresolved []string
	if err == nil {
		creds := []struct {
			key string
			v   *string
		}{
			{"zoho.client_id", &cfg.Zoho.ClientID},
			{"zoho.client_secret", &cfg.Zoho.ClientSecret},
			{"zoho.refresh_token", &cfg.Zoho.RefreshToken},
		}
		for _, c := range creds {
			if !strings.Contains(*c.v, unsetVar) {
				continue
			}
			if need == credsClient && c.key != "zoho.refresh_token" {
				err = errors.New("unresolved")
			}
			unresolved = append(unresolved, c.key)
			*c.v = ""
		}
		if strings.Contains(fmt.Sprintf("%#v", cfg), unsetVar) {
			err = errors.New("unresolved")
		}
	}
	if err != nil {
		// Load again without stand-ins: its errors name every variable set nowhere.
		_, err = config.LoadWith(path, lookup(vars, false))
		if err == nil {
			err = errors.New("config: internal error: a variable is set nowhere")
		}
		if envErr != nil && strings.Contains(err.Error(), "not set") {
			fmt.Fprintf(env.Stderr, "crmdrop: %v; run as a user that may read it, or set the variables in the environment\n", envErr)
		}
		return loadedConfig{}, printConfigErr(env, path, err)
	}
	return loadedConfig{cfg: cfg, path: abs, data: data, unresolved: unresolved, envErr: envErr}, true
}

// lookup resolves ${VAR}: the process environment first, then vars (from
// service.env_file); with standIn, a variable set nowhere becomes unsetVar.
func lookup(vars map[string]string, standIn bool) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		if v, ok := vars[name]; ok {
			return v, true
		}
		if standIn {
			return unsetVar, true
		}
		return "", false
	}
}

// printConfigErr prints each line of a configuration error, naming the file as the user
// gave it (config.Parse calls it "config.yaml"), and returns false.
func printConfigErr(env Env, path string, err error) bool {
	for _, l := range strings.Split(err.Error(), "\n") {
		if rest, ok := strings.CutPrefix(l, "config.yaml"); ok && (strings.HasPrefix(rest, " line ") || strings.HasPrefix(rest, ": ")) {
			l = path + rest
		}
		fmt.Fprintf(env.Stderr, "crmdrop: %s\n", l)
	}
	return false
}

// envLine finds the variable a line of an env file sets, for setEnvVar: ok is false
// for comments, blanks and lines config.LoadEnvFile would refuse. The value is unquoted
// only roughly; config.LoadEnvFile is what reads values.
func envLine(line string) (key, val string, ok bool) {
	line = strings.TrimSpace(strings.TrimPrefix(line, "\uFEFF"))
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	if rest, found := strings.CutPrefix(line, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	key, val, ok = strings.Cut(line, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" || strings.ContainsAny(key, " \t") {
		return "", "", false
	}
	val = strings.TrimSpace(val)
	if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
		val = val[1 : len(val)-1]
	}
	return key, val, true
}
