// Package admin is crmdrop's admin HTTP endpoint (/healthz, /metrics, /api/status,
// /api/entries), its Prometheus metrics, and the clients and text rendering behind
// `crmdrop status` and `crmdrop list`.
//
// It knows nothing of the daemon's parts: the daemon implements Source and owns what
// goes into a Status, so nothing here can leak configuration or secrets by itself.
package admin

import (
	"context"
	"encoding/json"
	"time"
)

// Values of Status.State.
const (
	StateRunning = "running"
	StateBlocked = "blocked"
	// StateStopped is what `crmdrop status` reports when it read the ledger because no
	// daemon answered: never served by /api/status.
	StateStopped = "stopped"
)

// Values of Status.Source.
const (
	SourceDaemon = "daemon" // read from a running daemon's /api/status
	SourceLedger = "ledger" // read from the ledger file because the daemon is down
)

// Status is the JSON behind /api/status and `crmdrop status --json` (SPEC §5).
// Its JSON form always has the counts pending, uploading, uploaded and failed (0 when
// absent from Counts) and encodes nil InFlight and RecentFailures as [], so scripts never
// meet a null; marshalling never modifies the Status it is given.
type Status struct {
	State          string         `json:"state"`          // StateRunning or StateBlocked (StateStopped from the ledger)
	BlockedReason  string         `json:"blocked_reason"` // "" when running
	Counts         map[string]int `json:"counts"`         // ledger entries per state
	Queue          int            `json:"queue"`
	InFlight       []InFlight     `json:"in_flight"`
	RecentFailures []Failure      `json:"recent_failures"`
	Inbox          string         `json:"inbox,omitempty"`
	Version        string         `json:"version,omitempty"`
	StartedAt      time.Time      `json:"started_at,omitzero"`
	Source         string         `json:"source,omitempty"` // SourceDaemon or SourceLedger
}

// InFlight is one upload under way.
type InFlight struct {
	Path     string    `json:"path"` // relative to the inbox, slash-separated
	Module   string    `json:"module"`
	RecordID string    `json:"record_id"`
	Attempts int       `json:"attempts"`
	Since    time.Time `json:"since"` // when the current attempt began
}

// Failure is one file that went to _failed/.
type Failure struct {
	Path  string    `json:"path"`
	Error string    `json:"error"` // the plain-language reason
	At    time.Time `json:"at"`
}

// Source supplies the daemon's current Status. The handler calls it once per
// /healthz or /api/status request, from the request's goroutine, so it must be safe
// for concurrent use and should return promptly when ctx is cancelled. The Status it
// returns is only read, never modified.
type Source interface {
	Status(ctx context.Context) (Status, error)
}

// Healther is a Source that can say its state without building a whole Status (which
// reads the ledger). /healthz, polled often by monitors, uses it when src has it.
type Healther interface {
	Health() (state, blockedReason string)
}

// countKeys returns the ledger states every Status reports, in display order.
func countKeys() []string { return []string{"pending", "uploading", "uploaded", "failed"} }

// MarshalJSON encodes s in the SPEC §5 shape (see Status).
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status // no methods: avoids recursing into MarshalJSON
	return json.Marshal(plain(s.normalized()))
}

// normalized returns a copy of s whose Counts has every state of countKeys and whose
// lists are non-nil. Counts is copied, never written: it may be the daemon's own map.
func (s Status) normalized() Status {
	counts := make(map[string]int, len(s.Counts)+4)
	for _, k := range countKeys() {
		counts[k] = 0
	}
	for k, v := range s.Counts {
		counts[k] = v
	}
	s.Counts = counts
	if s.InFlight == nil {
		s.InFlight = []InFlight{}
	}
	if s.RecentFailures == nil {
		s.RecentFailures = []Failure{}
	}
	return s
}
