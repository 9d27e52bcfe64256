package admin

import (
	"context"
	"slices"
	"time"
)

// Entry is one ledger entry as `crmdrop list` shows it and /api/entries serves it.
type Entry struct {
	Path         string    `json:"path"`
	Module       string    `json:"module"`
	RecordID     string    `json:"record_id"`
	State        string    `json:"state"`
	Size         int64     `json:"size"`
	ModTime      time.Time `json:"mtime"`
	Attempts     int       `json:"attempts"`
	LastError    string    `json:"last_error,omitempty"`
	AttachmentID string    `json:"attachment_id,omitempty"`
	MovedTo      string    `json:"moved_to,omitempty"`
	Updated      time.Time `json:"updated"`
}

// Lister lists ledger entries; state "" means all, limit <= 0 means no limit. A Source
// that also implements Lister gets GET /api/entries.
type Lister interface {
	Entries(ctx context.Context, state string, limit int) ([]Entry, error)
}

// States returns the ledger states an Entry can be in, in their usual order.
func States() []string { return countKeys() }

// ValidState reports whether s is one of States or "" (all states), as accepted by
// /api/entries and `crmdrop list --state`.
func ValidState(s string) bool { return s == "" || slices.Contains(countKeys(), s) }
