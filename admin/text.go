package admin

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
)

// maxTextFailures is how many recent failures WriteText shows; the JSON has them all.
const maxTextFailures = 10

// textTime is how WriteText prints times: in the time's own location (a Status decoded
// from the daemon's JSON on the same machine is in local time).
const textTime = "2006-01-02 15:04:05"

// WriteText writes s for people, as `crmdrop status` prints it: state (and the reason
// when blocked), counts, queue, the uploads in flight (oldest first) and the recent
// failures (newest first, at most 10). Every item is on one line. It returns the first
// write error.
func WriteText(w io.Writer, s Status) error {
	s = s.normalized()
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)

	state := s.State
	if state == "" {
		state = "unknown"
	}
	if s.BlockedReason != "" {
		state += ": " + oneLine(s.BlockedReason)
	}
	fmt.Fprintf(tw, "state:\t%s\n", state)
	fmt.Fprintf(tw, "counts:\t%s\n", countsText(s.Counts))
	fmt.Fprintf(tw, "queue:\t%d\n", s.Queue)
	if s.Inbox != "" {
		fmt.Fprintf(tw, "inbox:\t%s\n", s.Inbox)
	}
	if s.Version != "" {
		fmt.Fprintf(tw, "version:\t%s\n", s.Version)
	}
	if !s.StartedAt.IsZero() {
		fmt.Fprintf(tw, "started:\t%s\n", s.StartedAt.Format(textTime))
	}
	switch s.Source {
	case "":
	case SourceLedger:
		fmt.Fprintf(tw, "source:\tledger (the daemon is not running)\n")
	default:
		fmt.Fprintf(tw, "source:\t%s\n", s.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	inflight := slices.Clone(s.InFlight)
	slices.SortStableFunc(inflight, func(a, b InFlight) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Path, b.Path))
	})
	if len(inflight) == 0 {
		fmt.Fprintf(bw, "\nin flight: none\n")
	} else {
		fmt.Fprintf(bw, "\nin flight (%d):\n", len(inflight))
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		for _, f := range inflight {
			fmt.Fprintf(tw, "  %s\t%s %s\tattempt %d\tsince %s\n",
				oneLine(f.Path), oneLine(f.Module), oneLine(f.RecordID), f.Attempts, f.Since.Format(textTime))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	failures := slices.Clone(s.RecentFailures)
	slices.SortStableFunc(failures, func(a, b Failure) int { return b.At.Compare(a.At) })
	if len(failures) == 0 {
		fmt.Fprintf(bw, "\nrecent failures: none\n")
	} else {
		if len(failures) > maxTextFailures {
			fmt.Fprintf(bw, "\nrecent failures (newest %d of %d):\n", maxTextFailures, len(failures))
			failures = failures[:maxTextFailures]
		} else {
			fmt.Fprintf(bw, "\nrecent failures (%d, newest first):\n", len(failures))
		}
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		for _, f := range failures {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.At.Format(textTime), oneLine(f.Path), oneLine(f.Error))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// countsText lists the four ledger states in their usual order, then any others by name.
func countsText(counts map[string]int) string {
	keys := countKeys()
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps an item on its line and its columns aligned: an error text may hold
// line breaks or tabs (a path too, on Linux).
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}
