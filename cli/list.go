package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"crmdrop/admin"
	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/store"
)

// cmdList prints ledger entries, from the running daemon's /api/entries or, when no
// daemon answers, from the ledger itself. Text is a table; --json the array of
// admin.Entry that /api/entries serves ([] when none).
func cmdList(env Env, args []string) int {
	fs, cfgPath := newFlags(env, "list")
	state := fs.String("state", "", "only entries in this state: "+strings.Join(admin.States(), ", "))
	asJSON := fs.Bool("json", false, "print the entries as JSON")
	limit := fs.Int("limit", 0, "at most this many entries (0: all)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(env.Stderr, "crmdrop: list takes no arguments, got %q; usage: crmdrop list [--state S] [--json] [-c config.yaml]\n", fs.Arg(0))
		return exitUsage
	case !admin.ValidState(*state):
		fmt.Fprintf(env.Stderr, "crmdrop: unknown state %q; use one of %s (or leave --state out for all)\n", *state, strings.Join(admin.States(), ", "))
		return exitUsage
	case *limit < 0:
		fmt.Fprintf(env.Stderr, "crmdrop: --limit must be 0 (all) or more, got %d\n", *limit)
		return exitUsage
	}
	lc, ok := adminConfig(env, *cfgPath, credsOptional)
	if !ok {
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	entries, err := admin.FetchEntries(ctx, lc.cfg.AdminListen, *state, *limit)
	if errors.Is(err, admin.ErrUnreachable) {
		entries, err = ledgerEntries(lc.cfg, *state, *limit)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		if entries == nil {
			entries = []admin.Entry{}
		}
		b, err := json.MarshalIndent(entries, "", "  ")
		if err != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
			return exitFailure
		}
		env.Stdout.Write(append(b, '\n'))
		return exitOK
	}
	if err := writeEntries(env.Stdout, entries, *state); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// ledgerEntries reads entries from the ledger, read-only, in path order.
func ledgerEntries(cfg config.Config, state string, limit int) ([]admin.Entry, error) {
	led, err := openLedger(cfg)
	if err != nil {
		return nil, err
	}
	defer led.Close()
	out := []admin.Entry{}
	if state != "" {
		es, err := led.ByState(store.State(state), limit)
		for _, e := range es {
			out = append(out, daemon.EntryView(e))
		}
		return out, err
	}
	err = led.Each(func(e store.Entry) bool {
		out = append(out, daemon.EntryView(e))
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// writeEntries prints a table: state, path, record, attempts, and the attachment id
// (uploaded) or the last error.
func writeEntries(w io.Writer, entries []admin.Entry, state string) error {
	if len(entries) == 0 {
		what := "entries"
		if state != "" {
			what = state + " entries"
		}
		_, err := fmt.Fprintf(w, "no %s\n", what)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tPATH\tRECORD\tATTEMPTS\tATTACHMENT / LAST ERROR")
	for _, e := range entries {
		detail := e.LastError
		if e.AttachmentID != "" {
			detail = "attachment " + e.AttachmentID
		}
		record := strings.TrimSpace(e.Module + " " + e.RecordID)
		if record == "" {
			record = "-" // a file no record could be read for
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.State, cellText(e.Path), cellText(record), e.Attempts, cellText(detail))
	}
	return tw.Flush()
}

// cellText keeps a cell on its line and its tab out of the table's columns: a path on
// Linux, or an error text, may hold either.
func cellText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
