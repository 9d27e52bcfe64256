package daemon

import (
	"context"
	"fmt"
	"sort"

	"crmdrop/admin"
	"crmdrop/store"
)

var (
	_ admin.Lister   = (*Daemon)(nil)
	_ admin.Healther = (*Daemon)(nil)
)

// Health is the state /healthz reports: running, or blocked with the reason.
func (d *Daemon) Health() (state, blockedReason string) {
	if reason := d.Blocked(); reason != "" {
		return admin.StateBlocked, reason
	}
	return admin.StateRunning, ""
}

// Status is the snapshot behind /api/status and /healthz. Safe for concurrent use.
func (d *Daemon) Status(ctx context.Context) (admin.Status, error) {
	s, err := LedgerStatus(d.ledger)
	if err != nil {
		return admin.Status{}, err
	}
	s.Queue = d.q.len()
	s.Inbox = d.cfg.Inbox
	s.Version = d.version
	s.StartedAt = d.started
	s.Source = admin.SourceDaemon
	s.State, s.BlockedReason = d.Health()
	d.mu.Lock()
	for _, f := range d.inflight {
		s.InFlight = append(s.InFlight, f)
	}
	d.mu.Unlock()
	sort.Slice(s.InFlight, func(i, j int) bool { return s.InFlight[i].Since.Before(s.InFlight[j].Since) })
	return s, nil
}

// LedgerStatus is what the ledger alone tells: the counts per state and the newest
// failures. `crmdrop status` uses it when the daemon is down.
func LedgerStatus(led *store.Store) (admin.Status, error) {
	counts, err := led.Counts()
	if err != nil {
		return admin.Status{}, err
	}
	s := admin.Status{Counts: map[string]int{}}
	for st, n := range counts {
		s.Counts[string(st)] = n
	}
	failed, err := led.ByState(store.Failed, 0)
	if err != nil {
		return admin.Status{}, err
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Updated.After(failed[j].Updated) })
	for _, e := range failed[:min(len(failed), recentFailures)] {
		s.RecentFailures = append(s.RecentFailures, admin.Failure{Path: e.Path, Error: e.LastError, At: e.Updated})
	}
	return s, nil
}

// recentFailures is how many failures a status shows.
const recentFailures = 10

// Entries lists ledger entries for `crmdrop list` while the daemon holds the ledger.
func (d *Daemon) Entries(ctx context.Context, state string, limit int) ([]admin.Entry, error) {
	var out []admin.Entry
	add := func(e store.Entry) bool {
		out = append(out, EntryView(e))
		return limit <= 0 || len(out) < limit
	}
	if state != "" {
		st := store.State(state)
		switch st {
		case store.Pending, store.Uploading, store.Uploaded, store.Failed:
		default:
			return nil, fmt.Errorf("unknown state %q: use pending, uploading, uploaded or failed", state)
		}
		entries, err := d.ledger.ByState(st, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			add(e)
		}
		return out, nil
	}
	return out, d.ledger.Each(add)
}

// EntryView is the admin form of a ledger entry.
func EntryView(e store.Entry) admin.Entry {
	if e.Placement == store.Deleted {
		e.MovedTo = "(deleted)" // what list has always shown for after_upload: delete
	}
	return admin.Entry{
		Path: e.Path, Module: e.Module, RecordID: e.RecordID, State: string(e.State),
		Size: e.Size, ModTime: e.ModTime, Attempts: e.Attempts, LastError: e.LastError,
		AttachmentID: e.AttachmentID, MovedTo: e.MovedTo, Updated: e.Updated,
	}
}
