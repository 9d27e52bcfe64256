package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"crmdrop/zoho"
)

// refreshVar is the environment variable the example configuration reads
// zoho.refresh_token from.
const refreshVar = "CRMDROP_REFRESH_TOKEN"

// cmdAuth exchanges a Self Client grant token for a refresh token. It prints the token
// alone on stdout (so that it can be piped) and where to put it on stderr; with --write
// it stores it in service.env_file instead and prints no secret. The configuration
// needs client_id and client_secret, not refresh_token: that is what this makes.
func cmdAuth(env Env, args []string) int {
	fs, cfgPath := newFlags(env, "auth")
	grant := fs.String("grant-token", "", "the grant token (code) from the Zoho API Console's Self Client")
	write := fs.Bool("write", false, "store the refresh token as "+refreshVar+" in service.env_file instead of printing it")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	code := strings.TrimSpace(*grant)
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(env.Stderr, "crmdrop: auth takes no arguments, got %q; usage: crmdrop auth --grant-token T [--write] [-c config.yaml]\n", fs.Arg(0))
		return exitUsage
	case code == "":
		fmt.Fprintln(env.Stderr, "crmdrop: auth needs --grant-token T: in the Zoho API Console open your Self Client, Generate Code with scope ZohoCRM.modules.ALL, and pass the code within its 10 minutes")
		return exitUsage
	}
	lc, ok := adminConfig(env, *cfgPath, credsClient)
	if !ok {
		return exitUsage
	}
	cfg := lc.cfg
	var missing bool
	if cfg.Zoho.ClientID == "" {
		fmt.Fprintln(env.Stderr, "crmdrop: zoho.client_id: missing; copy the Client ID of your Self Client from the Zoho API Console (e.g. client_id: ${CRMDROP_CLIENT_ID})")
		missing = true
	}
	if cfg.Zoho.ClientSecret == "" {
		fmt.Fprintln(env.Stderr, "crmdrop: zoho.client_secret: missing; copy the Client Secret of your Self Client from the Zoho API Console (e.g. client_secret: ${CRMDROP_CLIENT_SECRET})")
		missing = true
	}
	// Checked before the exchange: a grant token works once, so a refusal after it would
	// waste it.
	if *write && cfg.Service.EnvFile == "" {
		fmt.Fprintln(env.Stderr, "crmdrop: --write stores the token in service.env_file, which the configuration does not set; set service.env_file (e.g. /etc/crmdrop/env), or leave out --write and store the token yourself")
		missing = true
	}
	if missing {
		return exitUsage
	}

	accounts, _ := cfg.Zoho.Endpoints()
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, checkNetTimeout)
	defer cancel()
	refresh, err := zoho.ExchangeGrant(ctx, nil, accounts, cfg.Zoho.ClientID, cfg.Zoho.ClientSecret, code)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %s\n", grantProblem(err, accounts))
		return exitFailure
	}

	if !*write {
		fmt.Fprintln(env.Stdout, refresh)
		fmt.Fprintf(env.Stderr, "crmdrop: that is the refresh token (it does not expire; keep it secret): set %s to it, in the environment or in the service's env file (service.env_file), for zoho.refresh_token: ${%s}\n", refreshVar, refreshVar)
		noteRefreshVar(env, lc)
		return exitOK
	}
	if err := setEnvVar(cfg.Service.EnvFile, refreshVar, refresh); err != nil {
		// The grant token is spent: the refresh token must not be lost with the error.
		fmt.Fprintln(env.Stdout, refresh)
		fmt.Fprintf(env.Stderr, "crmdrop: could not write %s: %v; the refresh token is printed above: store it as %s yourself\n", cfg.Service.EnvFile, cause(err), refreshVar)
		return exitFailure
	}
	fmt.Fprintf(env.Stdout, "wrote %s to %s (mode 0600); restart the service so that it reads it: crmdrop service restart\n", refreshVar, cfg.Service.EnvFile)
	noteRefreshVar(env, lc)
	return exitOK
}

// noteRefreshVar warns when the configuration will not read the variable just set.
func noteRefreshVar(env Env, lc loadedConfig) {
	if !bytes.Contains(lc.data, []byte("${"+refreshVar+"}")) {
		fmt.Fprintf(env.Stderr, "crmdrop: note: %s does not read ${%s}; set zoho.refresh_token: ${%s} in it so that crmdrop uses the new token\n", lc.path, refreshVar, refreshVar)
	}
}

// grantProblem says what a failed exchange means and what to do.
func grantProblem(err error, accounts string) string {
	var te *zoho.TokenError
	if errors.As(err, &te) {
		switch te.Code {
		case "invalid_code":
			return "the grant token is wrong or expired (they last 10 minutes and work once): generate a new one in the API Console's Self Client (Generate Code) and run auth again at once"
		case "invalid_client":
			return fmt.Sprintf("Zoho rejected the client (invalid_client): the client id or secret is wrong, or the Self Client belongs to another data center than %s; check zoho.client_id, zoho.client_secret and zoho.data_center", accounts)
		}
	}
	var ne *zoho.NetError
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("could not reach the Zoho accounts server %s (%s); check the network (and any proxy) and zoho.data_center", accounts, strings.TrimPrefix(err.Error(), "zoho: "))
	}
	return "exchange the grant token: " + strings.TrimPrefix(err.Error(), "zoho: ")
}

// setEnvVar sets key=val in the env file at path, replacing every earlier line for key
// and keeping all other lines as they were (and the file's CRLF line ends, if it has
// them). The file is replaced atomically and left with mode 0600: it holds secrets.
func setEnvVar(path, key, val string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	eol := "\n"
	if bytes.Contains(old, []byte("\r\n")) {
		eol = "\r\n"
	}
	text := strings.ReplaceAll(string(old), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	var lines []string
	done := false
	if text != "" {
		for _, l := range strings.Split(text, "\n") {
			if k, _, ok := envLine(l); ok && k == key {
				if done {
					continue // a later duplicate would override ours
				}
				l, done = key+"="+val, true
			}
			lines = append(lines, l)
		}
	}
	if !done {
		lines = append(lines, key+"="+val)
	}
	data := []byte(strings.Join(lines, eol) + eol)

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if errors.Is(err, errors.ErrUnsupported) {
		err = nil // Windows: the folder's ACL applies
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
