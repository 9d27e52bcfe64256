package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"crmdrop/admin"
	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/store"
)

// ledgerWait is how long status, list and check wait for the ledger's lock: the daemon
// holds it for as long as it runs, so waiting longer only delays the answer.
const ledgerWait = 500 * time.Millisecond

// cmdStatus prints the running daemon's status from its admin endpoint or, when no
// daemon answers, what the ledger holds (state "stopped", source "ledger"). Exit 0 when
// it could say something, blocked or not; 1 when neither source could be read.
func cmdStatus(env Env, args []string) int {
	fs, cfgPath := newFlags(env, "status")
	asJSON := fs.Bool("json", false, "print the status as JSON (the shape of GET /api/status)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "crmdrop: status takes no arguments, got %q; usage: crmdrop status [--json] [-c config.yaml]\n", fs.Arg(0))
		return exitUsage
	}
	lc, ok := adminConfig(env, *cfgPath, credsOptional)
	if !ok {
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	st, err := currentStatus(ctx, lc.cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
			return exitFailure
		}
		env.Stdout.Write(append(b, '\n'))
		return exitOK
	}
	if err := admin.WriteText(env.Stdout, st); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// currentStatus asks the daemon, else reads the ledger.
func currentStatus(ctx context.Context, cfg config.Config) (admin.Status, error) {
	st, err := admin.Fetch(ctx, cfg.AdminListen)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, admin.ErrUnreachable) {
		return admin.Status{}, err // something answered, badly: the ledger is not ours to read
	}
	led, err := openLedger(cfg)
	if err != nil {
		return admin.Status{}, err
	}
	defer led.Close()
	return ledgerStatus(led, cfg)
}

// openLedger opens the ledger read-only for a command that found no daemon to ask, and
// turns the ways that can fail into one line each.
func openLedger(cfg config.Config) (*store.Store, error) {
	path := daemon.LedgerPath(cfg)
	led, err := store.Open(path, store.Options{ReadOnly: true, Timeout: ledgerWait})
	switch {
	case err == nil:
		return led, nil
	case errors.Is(err, store.ErrLocked) && cfg.AdminListen == "":
		return nil, fmt.Errorf("the ledger %s is in use (the daemon seems to be running), but admin_listen is empty, so the daemon cannot be asked; set admin_listen (e.g. 127.0.0.1:9477) and restart it", path)
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("the ledger %s is in use by another process, but no crmdrop daemon answers at %s; if the daemon is starting, try again; otherwise run this command with that daemon's config (-c)", path, cfg.AdminListen)
	case errors.Is(err, fs.ErrNotExist):
		where := "admin_listen is empty"
		if cfg.AdminListen != "" {
			where = "no daemon answers at " + cfg.AdminListen
		}
		return nil, fmt.Errorf("no ledger at %s (%s): crmdrop has not run with this state_dir yet; start it with \"crmdrop run\" or \"crmdrop service start\"", path, where)
	}
	return nil, err
}

// ledgerStatus is the Status the ledger alone can give: counts, the files waiting, and
// the latest failures. Nothing is in flight, since no daemon runs.
func ledgerStatus(led *store.Store, cfg config.Config) (admin.Status, error) {
	st, err := daemon.LedgerStatus(led)
	if err != nil {
		return admin.Status{}, err
	}
	st.State, st.Source, st.Inbox = admin.StateStopped, admin.SourceLedger, cfg.Inbox
	// The ledger is the queue: pending files are what the next start takes first.
	st.Queue = st.Counts[string(store.Pending)]
	return st, nil
}
