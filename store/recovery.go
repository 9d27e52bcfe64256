package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"crmdrop/internal/clock"
)

// Recovery records that the ledger was lost and this one started afresh: until the
// daemon has checked every file against its record's attachments, an upload the lost
// ledger knew of may not be in this one, so nothing is sent unchecked. The store only
// keeps it; when recovery ends is the daemon's decision (ClearRecovery).
type Recovery struct {
	// Reason is one plain sentence saying what was wrong with the lost ledger.
	Reason string
	// Since is when the recovery began.
	Since time.Time
	// MovedAside is the path the lost ledger file was renamed to
	// ("…/ledger.db.corrupt-20250314T150926Z"), kept for inspection.
	MovedAside string
}

// recoveryJSON is Recovery's form in the meta bucket, apart from Recovery so that
// renaming a Go field cannot change the file format.
type recoveryJSON struct {
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
	MovedAside string    `json:"moved_aside,omitempty"`
}

// Recovery returns the ledger's recovery state, and whether it is in recovery.
func (s *Store) Recovery() (Recovery, bool, error) {
	var (
		r  Recovery
		ok bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketMeta)).Get([]byte(metaRecovery))
		if v == nil {
			return nil
		}
		var j recoveryJSON
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("store: ledger recovery state is corrupt: %w", err)
		}
		r, ok = Recovery(j), true
		return nil
	})
	return r, ok, err
}

// SetRecovery puts the ledger in recovery, or replaces its recovery state. r.Reason
// must not be empty. It is durable when it returns, like Put.
func (s *Store) SetRecovery(r Recovery) error {
	if r.Reason == "" {
		return errors.New("store: a recovery needs a reason")
	}
	v, err := json.Marshal(recoveryJSON(r))
	if err != nil {
		return err
	}
	return s.write(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaRecovery), v)
	})
}

// ClearRecovery takes the ledger out of recovery. Clearing a ledger not in recovery is
// not an error.
func (s *Store) ClearRecovery() error {
	return s.write(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaRecovery))
	})
}

// asideLayout is the UTC time in the name a lost ledger is moved aside to.
const asideLayout = "20060102T150405Z"

// OpenOrRecover is Open for the daemon, which must start even when its ledger is lost.
// Beyond Open's checks it checks the whole ledger before anything is written: bbolt's
// consistency check (tx.Check) and every entry against the indexes and counts (about
// 0.4-0.6 s in all for 100,000 entries). When the file exists but cannot be opened or
// read as a crmdrop ledger (anything that matches ErrCorrupt: not bbolt, empty,
// truncated, damaged pages, no schema, entries that do not decode or do not match
// their keys, indexes or counts that disagree with the entries), it keeps the file as
// <path>.corrupt-YYYYMMDDTHHMMSSZ (UTC, with "-2", "-3"… rather than overwrite a
// name), puts a fresh ledger in its place with a Recovery recorded in it, and returns
// that Recovery. The Recovery is non-nil only when this call did that; a ledger still
// in recovery from an earlier start reports it through Store.Recovery.
//
// Everything else is returned as an error and the file is left alone: ErrLocked (the
// ledger is someone's, and sound as far as is known), a ledger of a newer schema, and
// I/O or permission errors, which say nothing about the file's contents.
//
// The fresh ledger is made under a temporary name and renamed over the old one once
// the old one is kept aside by a hard link, so a crash at any moment leaves either the
// lost ledger (found again at the next start) or a fresh one in recovery, never a fresh
// one without. Where hard links are not supported the old file is renamed aside first.
//
// opts.ReadOnly is refused: recovering writes.
func OpenOrRecover(path string, opts Options) (*Store, *Recovery, error) {
	if opts.ReadOnly {
		return nil, nil, errors.New("store: OpenOrRecover cannot open read-only; use Open")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	s, err := open(path, opts, true)
	if err == nil {
		return s, nil, nil
	}
	var ce *corruptError
	if !errors.As(err, &ce) {
		return nil, nil, err
	}
	now := opts.Clock.Now()
	rec := Recovery{Reason: sentence(ce.reason), Since: now}
	if rec.MovedAside, err = replace(path, now, opts, rec); err != nil {
		return nil, nil, fmt.Errorf("ledger %s cannot be read (%s) and could not be replaced: %w", path, ce.reason, err)
	}
	s, err = Open(path, opts)
	if err != nil {
		return nil, nil, err
	}
	got, ok, err := s.Recovery()
	if err != nil || !ok {
		_ = s.Close()
		return nil, nil, fmt.Errorf("ledger %s: the fresh ledger lost its recovery state (%v)", path, err)
	}
	return s, &got, nil
}

// sentence makes a reason clause into the sentence Recovery.Reason holds.
func sentence(reason string) string {
	return "The ledger file could not be read: " + strings.TrimSuffix(reason, ".") + "."
}

// replace puts a fresh ledger in recovery rec at path, keeping the file there under a
// new name, which it returns. rec.MovedAside is filled in here.
func replace(path string, now time.Time, opts Options, rec Recovery) (string, error) {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	aside, err := asideName(path, now)
	if err != nil {
		return "", err
	}
	rec.MovedAside = aside
	fresh, err := Open(tmp, opts)
	if err != nil {
		return "", err
	}
	err = fresh.SetRecovery(rec)
	if cerr := fresh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	if err := os.Link(path, aside); err != nil {
		if errors.Is(err, fs.ErrExist) {
			_ = os.Remove(tmp)
			return "", err
		}
		// No hard links here (FAT, some network shares): rename, leaving a moment
		// with no ledger at path, in which a crash means a fresh ledger not in recovery.
		if err := os.Rename(path, aside); err != nil {
			_ = os.Remove(tmp)
			return "", err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	syncDir(filepath.Dir(path))
	return aside, nil
}

// asideName is the first of path.corrupt-<now>, -2, -3… that does not exist.
func asideName(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format(asideLayout)
	for n := 1; n < 1000; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("too many lost ledgers named %s-*", base)
}

// syncDir makes the renames in dir durable where the system allows it (not Windows,
// where a directory cannot be opened for sync and renames are journalled anyway).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
