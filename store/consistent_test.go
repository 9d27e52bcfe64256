package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openAt is Open for tests: a store it opens is checked by checkConsistent and closed
// when the test ends, unless the test closed it first (with closeStore, which checks).
func openAt(t testing.TB, path string, opts Options) (*Store, error) {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	track(t, s)
	return s, nil
}

// track registers s for checkConsistent and Close at the end of the test.
func track(t testing.TB, s *Store) *Store {
	t.Helper()
	t.Cleanup(func() {
		if closed(s) {
			return
		}
		checkConsistent(t, s)
		_ = s.Close()
	})
	return s
}

// closeStore checks s and closes it.
func closeStore(t testing.TB, s *Store) {
	t.Helper()
	checkConsistent(t, s)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func closed(s *Store) bool {
	return errors.Is(s.db.View(func(*bolt.Tx) error { return nil }), bolt.ErrDatabaseNotOpen)
}

// checkConsistent fails the test unless the indexes and counts of s agree with its
// entries bucket, worked out here from the entries alone, and bbolt's tx.Check and the
// store's own verify (what OpenOrRecover runs) pass.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var problems []error
		for err := range tx.Check() {
			problems = append(problems, fmt.Errorf("tx.Check: %w", err))
		}
		entries := tx.Bucket([]byte(bucketEntries))
		wantStates := map[string]bool{}
		wantCounts := map[State]int64{}
		holders := map[string]map[string]bool{} // "a/"+attachment or "f/"+file id -> keys holding it
		hold := func(kind, id string, key []byte) {
			if id == "" {
				return
			}
			if holders[kind+id] == nil {
				holders[kind+id] = map[string]bool{}
			}
			holders[kind+id][string(key)] = true
		}
		err := entries.ForEach(func(k, v []byte) error {
			e, err := decode(k, v)
			if err != nil {
				problems = append(problems, err)
				return nil
			}
			if e.Key() != string(k) {
				problems = append(problems, fmt.Errorf("entry under %q has key %q", k, e.Key()))
			}
			wantStates[string(stateKey(e.State, k))] = true
			wantCounts[e.State]++
			hold("a/", e.AttachmentID, k)
			hold("f/", e.FileID, k)
			return nil
		})
		if err != nil {
			return err
		}
		var gotStates []string
		_ = tx.Bucket([]byte(bucketStates)).ForEach(func(k, _ []byte) error {
			gotStates = append(gotStates, string(k))
			return nil
		})
		want := make([]string, 0, len(wantStates))
		for k := range wantStates {
			want = append(want, k)
		}
		slices.Sort(want)
		if !slices.Equal(gotStates, want) {
			problems = append(problems, fmt.Errorf("states index = %q, want %q", gotStates, want))
		}
		meta := tx.Bucket([]byte(bucketMeta))
		for _, st := range []State{Pending, Uploading, Uploaded, Failed} {
			var got int64
			if v := meta.Get([]byte(countPrefix + string(st))); len(v) == 8 {
				got = bytesInt64(v)
			}
			if got != wantCounts[st] {
				problems = append(problems, fmt.Errorf("count of %s = %d, want %d", st, got, wantCounts[st]))
			}
		}
		// An index row must name an entry holding its id. (An entry's id may have no
		// row: a later entry took it, then let go.)
		_ = tx.Bucket([]byte(bucketAttachments)).ForEach(func(id, tag []byte) error {
			for k := range holders["a/"+string(id)] {
				if bytes.Equal(tag, keyTag([]byte(k))) || bytes.Equal(tag, []byte(k)) {
					return nil
				}
			}
			problems = append(problems, fmt.Errorf("attachment index row %q -> %x names no entry holding it", id, tag))
			return nil
		})
		if ids := tx.Bucket([]byte(bucketIDs)); ids != nil {
			_ = ids.ForEach(func(id, key []byte) error {
				if !holders["f/"+string(id)][string(key)] {
					problems = append(problems, fmt.Errorf("id index row %q -> %q names no entry holding it", id, key))
				}
				return nil
			})
			// verify must see exactly what this sees.
			switch verr := verify(tx); {
			case verr != nil && len(problems) == 0:
				problems = append(problems, fmt.Errorf("verify finds a problem where there is none: %w", verr))
			case verr == nil && len(problems) > 0:
				problems = append(problems, errors.New("verify finds nothing wrong"))
			}
		}
		return errors.Join(problems...)
	})
	if err != nil {
		t.Errorf("ledger %s is inconsistent: %v", s.path, err)
	}
}
