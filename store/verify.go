package store

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// verify checks that the ledger's contents agree with themselves: every entry decodes,
// under its own key;
// the states index holds exactly one row per entry, under its state; the counts match;
// every row of the attachment and id indexes belongs to an entry that records that id.
// (An entry's attachment or file id may lack a row: another entry took it later.)
// It reports the first disagreement as a *corruptError.
//
// Each of these breaks a read or a decision for good (ByState fails on a state row
// without its entry, Each on a value that does not decode), and all of them are written
// in the same transaction, so a disagreement means a damaged file rather than a
// half-done change.
func verify(tx *bolt.Tx) error {
	b := writeBuckets(tx)
	for _, bk := range []*bolt.Bucket{b.entries, b.states, b.attachments, b.meta} {
		if bk == nil {
			return &corruptError{reason: "it is missing one of its buckets"}
		}
	}
	// A ledger from before schema 3 has no ids bucket until its first writable open.
	ids := b.ids != nil
	tally := map[State]int64{}
	var attachmentRows, idRows int
	// The states index is walked beside the entries rather than looked up: its rows
	// for one state are in key order, as the entries are, so each entry of state st
	// must be the next row of st. (One lookup per entry made verify twice as slow.)
	rows := map[State]*stateRows{}
	for _, st := range allStates {
		rows[st] = newStateRows(b.states, st)
	}
	// One cursor for each index, rather than a Get (a new cursor) per entry.
	attachments := b.attachments.Cursor()
	var idc *bolt.Cursor
	if ids {
		idc = b.ids.Cursor()
	}
	err := b.entries.ForEach(func(k, v []byte) error {
		e, err := decode(k, v)
		if err != nil {
			return &corruptError{reason: strings.TrimPrefix(err.Error(), "store: ")}
		}
		if e.Key() != string(k) {
			// Put would file it under another key, leaving this one behind.
			return &corruptError{reason: fmt.Sprintf("entry %q holds the size and time of another file", k)}
		}
		if !e.State.valid() {
			return &corruptError{reason: fmt.Sprintf("entry %q has unknown state %q", k, e.State)}
		}
		if err := rows[e.State].next(k); err != nil {
			return err
		}
		tally[e.State]++
		if e.AttachmentID != "" {
			if v := get(attachments, e.AttachmentID); bytes.Equal(v, keyTag(k)) || bytes.Equal(v, k) {
				attachmentRows++
			}
		}
		if ids && e.FileID != "" && bytes.Equal(get(idc, e.FileID), k) {
			idRows++
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Every row was matched if each state's rows are used up and nothing lies outside
	// the four states' ranges: before the first, or after one and not in another.
	first, _ := b.states.Cursor().First()
	if first != nil && !validStateRow(first) {
		return &corruptError{reason: fmt.Sprintf("its state index has a row %q for no state", first)}
	}
	for _, st := range allStates {
		if k := rows[st].key; k != nil && !validStateRow(k) {
			return &corruptError{reason: fmt.Sprintf("its state index has a row %q for no state", k)}
		} else if k != nil && bytes.HasPrefix(k, rows[st].prefix) {
			return &corruptError{reason: fmt.Sprintf("its %s index names entry %q, which is not %s", st, k[len(rows[st].prefix):], st)}
		}
	}
	for _, st := range allStates {
		var n int64
		if v := b.meta.Get([]byte(countPrefix + string(st))); len(v) == 8 {
			n = bytesInt64(v)
		}
		if n != tally[st] {
			return &corruptError{reason: fmt.Sprintf("it counts %d %s entries but holds %d", n, st, tally[st])}
		}
	}
	if n := b.attachments.Stats().KeyN; n != attachmentRows {
		return &corruptError{reason: fmt.Sprintf("%d rows of its attachment index name no entry that holds the id", n-attachmentRows)}
	}
	if !ids {
		return nil
	}
	if n := b.ids.Stats().KeyN; n != idRows {
		return &corruptError{reason: fmt.Sprintf("%d rows of its file-id index name no entry that holds the id", n-idRows)}
	}
	return nil
}

// get is Bucket.Get through c.
func get(c *bolt.Cursor, key string) []byte {
	if k, v := c.Seek([]byte(key)); string(k) == key {
		return v
	}
	return nil
}

var allStates = []State{Pending, Uploading, Uploaded, Failed}

// stateRows walks the rows of one state in the states index.
type stateRows struct {
	st     State
	prefix []byte
	c      *bolt.Cursor
	key    []byte // the next row, or the first key past the state's rows, or nil
}

func newStateRows(states *bolt.Bucket, st State) *stateRows {
	r := &stateRows{st: st, prefix: stateKey(st, nil), c: states.Cursor()}
	r.key, _ = r.c.Seek(r.prefix)
	return r
}

// next consumes the row for entry key, which must be the next row of the state.
func (r *stateRows) next(key []byte) error {
	if r.key == nil || !bytes.HasPrefix(r.key, r.prefix) || !bytes.Equal(r.key[len(r.prefix):], key) {
		if r.key != nil && bytes.HasPrefix(r.key, r.prefix) && bytes.Compare(r.key[len(r.prefix):], key) < 0 {
			return &corruptError{reason: fmt.Sprintf("its %s index names entry %q, which is not %s", r.st, r.key[len(r.prefix):], r.st)}
		}
		return &corruptError{reason: fmt.Sprintf("entry %q is missing from the %s index", key, r.st)}
	}
	r.key, _ = r.c.Next()
	return nil
}

func validStateRow(k []byte) bool {
	st, _, ok := bytes.Cut(k, []byte{0})
	return ok && State(st).valid()
}

// checkTree runs bbolt's own consistency check (tx.Check), which reads every page: about
// 40 ms for 100,000 entries (BenchmarkOpenChecks), far under the 2 s that would call for
// something cheaper. Only after checkPages: tx.Check trusts page ids and recurses, in a
// goroutine of its own where a memory fault is fatal.
func checkTree(tx *bolt.Tx) error {
	var first error
	// Drain the channel: tx.Check's goroutine reads the transaction's pages until it
	// closes it, so returning early would leave it reading pages after the rollback.
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return &corruptError{reason: fmt.Sprintf("bbolt's consistency check failed (%v)", first)}
	}
	return nil
}
