// Package store is crmdrop's ledger: one bbolt file holding an Entry for every file the
// daemon has seen, indexed by state and by Zoho attachment id, with per-state counts.
// It stores and indexes and holds no policy: which state changes are allowed, and when,
// is the daemon's decision.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the ledger format this build writes. Bump it when the meaning of a
// bucket or of the record encoding changes; Open refuses files with a higher number.
const schemaVersion = 2

// Bucket names, and keys inside the meta bucket.
const (
	bucketEntries     = "entries"     // Entry.Key() -> encoded entry (entry.go)
	bucketStates      = "states"      // state NUL key -> empty
	bucketAttachments = "attachments" // attachment id -> keyTag(Entry.Key())
	bucketMeta        = "meta"        // metaSchema, countPrefix+state -> int64 big-endian

	metaSchema  = "schema"
	countPrefix = "count/"
)

// eachPage is how many entries Each reads per transaction.
const eachPage = 256

// ErrLocked is matched (errors.Is) by the error Open returns when another process holds
// the ledger file.
var ErrLocked = errors.New("ledger is in use by another process")

type lockedError struct{ path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("ledger %s is in use by another crmdrop process (is the daemon running?)", e.path)
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Options configures Open. The zero value opens read-write with a 1 s lock wait.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another process.
	// Zero or negative means 1 s: bbolt itself would wait forever.
	Timeout time.Duration
	// ReadOnly opens without writing (for `crmdrop status` while the daemon is down).
	// It still takes a shared lock, so it fails with ErrLocked while a writer is open.
	ReadOnly bool
	// NoSync skips fsync on commit. A crash can then lose or corrupt the ledger: tests
	// and benchmarks only.
	NoSync bool
}

// Store is an open ledger. All methods are safe for concurrent use by many goroutines.
// Writes are durable when they return (unless Options.NoSync).
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool

	mu         sync.Mutex
	queue      []*call // writes waiting for the next commit
	committing bool    // a commit is running; its leader will hand on to queue[0]
}

// Open opens the ledger at path, creating it (and its folder, mode 0700; the file 0600)
// unless opts.ReadOnly. If another process holds the file it fails after opts.Timeout
// with an error matching ErrLocked. It refuses a ledger written by a newer schema.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create ledger folder: %w", err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
	})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, &lockedError{path: path}
	case opts.ReadOnly && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("ledger %s does not exist yet (crmdrop creates it when it first runs): %w", path, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		err = db.View(s.checkReadOnly)
	} else {
		err = db.Update(s.initSchema)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) initSchema(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return err
	}
	if meta.Get([]byte(metaSchema)) == nil {
		// Only a file with nothing in it yet is ours to claim.
		empty := true
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			empty = empty && string(name) == bucketMeta
			return nil
		})
		if !empty {
			return s.checkSchema(tx)
		}
		if err := meta.Put([]byte(metaSchema), int64Bytes(schemaVersion)); err != nil {
			return err
		}
	}
	if err := s.checkSchema(tx); err != nil {
		return err
	}
	// Schema 1 differs only in how values are encoded, and schema-1 values are still
	// read: mark the file as 2, so an older crmdrop refuses it instead of misreading
	// the values this build writes.
	if meta := tx.Bucket([]byte(bucketMeta)); bytesInt64(meta.Get([]byte(metaSchema))) < schemaVersion {
		if err := meta.Put([]byte(metaSchema), int64Bytes(schemaVersion)); err != nil {
			return err
		}
	}
	for _, name := range []string{bucketEntries, bucketStates, bucketAttachments} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	var v []byte
	if meta != nil {
		v = meta.Get([]byte(metaSchema))
	}
	if len(v) != 8 {
		return fmt.Errorf("%s is not a crmdrop ledger (no schema version): move it aside and start crmdrop again", s.path)
	}
	switch n := bytesInt64(v); {
	case n > schemaVersion:
		return fmt.Errorf("ledger %s was written by a newer crmdrop (schema %d; this one reads %d): upgrade crmdrop", s.path, n, schemaVersion)
	case n < 1:
		return fmt.Errorf("ledger %s has an invalid schema version %d", s.path, n)
	}
	return nil
}

// checkReadOnly is checkSchema plus the buckets that initSchema would otherwise create.
func (s *Store) checkReadOnly(tx *bolt.Tx) error {
	if err := s.checkSchema(tx); err != nil {
		return err
	}
	for _, name := range []string{bucketEntries, bucketStates, bucketAttachments} {
		if tx.Bucket([]byte(name)) == nil {
			return fmt.Errorf("ledger %s is missing its %s bucket: move it aside and start crmdrop again", s.path, name)
		}
	}
	return nil
}

// Close closes the ledger, waiting for transactions in progress. Calls after Close fail.
func (s *Store) Close() error { return s.db.Close() }

// Put inserts e, or replaces the entry with the same Key, and updates the indexes and
// counts in the same transaction. It stores e's times as given: setting Updated is the
// caller's job. It returns once the change is on disk; concurrent Puts share a commit.
func (s *Store) Put(e Entry) error {
	op, err := preparePut(e)
	if err != nil {
		return err
	}
	return s.write(op.apply)
}

// PutAll is Put for many entries in one transaction: all are stored or none. Later
// entries win over earlier ones with the same Key.
func (s *Store) PutAll(es []Entry) error {
	if len(es) == 0 {
		return nil
	}
	ops := make([]putOp, len(es))
	for i, e := range es {
		op, err := preparePut(e)
		if err != nil {
			return err
		}
		ops[i] = op
	}
	return s.write(func(tx *bolt.Tx) error {
		for _, op := range ops {
			if err := op.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes the entry with key, and its index entries. Deleting a missing key is
// not an error.
func (s *Store) Delete(key string) error {
	k := []byte(key)
	return s.write(func(tx *bolt.Tx) error {
		b := writeBuckets(tx)
		old := b.entries.Get(k)
		if old == nil {
			return nil
		}
		if err := b.unindex(k, old); err != nil {
			return err
		}
		return b.entries.Delete(k)
	})
}

// write commits fn, durably, before it returns. It is a group commit: a call that finds
// no commit running commits at once; calls arriving meanwhile queue, and the next commit
// takes the whole queue in one transaction (one fsync). bbolt's db.Batch was measured
// instead and rejected: it holds every batch, a lone call included, for MaxBatchDelay
// (10 ms), so a sequential Put cost 10-20 ms against 2-5 ms for Update, and concurrent
// Puts still ran about ten times slower than here (see BenchmarkPutParallel).
//
// As with db.Batch, fn may run more than once, in different transactions (when a shared
// transaction fails, each call is retried alone): fn must read everything it depends on
// from tx and change nothing outside it.
func (s *Store) write(fn func(*bolt.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("store: ledger %s is open read-only", s.path)
	}
	c := &call{fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	lead := !s.committing
	s.committing = true
	s.mu.Unlock()
	if !lead {
		if err := <-c.done; err != (leadSignal{}) {
			return err
		}
	}
	s.mu.Lock()
	calls := s.queue
	s.queue = nil
	s.mu.Unlock()
	s.commit(calls)
	// Hand the next commit to the first waiter rather than looping here, so that this
	// caller returns as soon as its own write is durable.
	s.mu.Lock()
	if len(s.queue) > 0 {
		s.queue[0].done <- leadSignal{}
	} else {
		s.committing = false
	}
	s.mu.Unlock()
	return <-c.done
}

// call is one write waiting for a commit. done (capacity 1) receives leadSignal when the
// caller is to run the next commit itself, then its result.
type call struct {
	fn   func(*bolt.Tx) error
	done chan error
}

type leadSignal struct{}

func (leadSignal) Error() string { return "store: lead the next commit" }

// commit runs calls in one transaction and tells each its result.
func (s *Store) commit(calls []*call) {
	var fnFailed bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, c := range calls {
			if err := safely(c.fn, tx); err != nil {
				fnFailed = true
				return err
			}
		}
		return nil
	})
	if fnFailed && len(calls) > 1 {
		// One call's error must not fail the others: give each its own transaction.
		for _, c := range calls {
			c.done <- s.db.Update(func(tx *bolt.Tx) error { return safely(c.fn, tx) })
		}
		return
	}
	for _, c := range calls {
		c.done <- err
	}
}

// safely turns a panic in fn into an error, so that a bug in one write cannot leave the
// other writers in its commit waiting forever.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in write: %v", p)
		}
	}()
	return fn(tx)
}

// putOp is a Put with everything that does not need the transaction done up front, so
// that the part a commit may repeat is only the bucket work.
type putOp struct {
	key, val   []byte
	state      State
	attachment []byte
}

func preparePut(e Entry) (putOp, error) {
	if err := e.validate(); err != nil {
		return putOp{}, err
	}
	val, err := encode(e)
	if err != nil {
		return putOp{}, fmt.Errorf("store: encode entry %q: %w", e.Path, err)
	}
	op := putOp{key: []byte(e.Key()), val: val, state: e.State}
	if e.AttachmentID != "" {
		op.attachment = []byte(e.AttachmentID)
	}
	return op, nil
}

func (op putOp) apply(tx *bolt.Tx) error {
	b := writeBuckets(tx)
	if old := b.entries.Get(op.key); old != nil {
		if err := b.unindex(op.key, old); err != nil {
			return err
		}
	}
	if err := b.entries.Put(op.key, op.val); err != nil {
		return err
	}
	if err := b.states.Put(stateKey(op.state, op.key), []byte{}); err != nil {
		return err
	}
	if err := b.addCount(op.state, 1); err != nil {
		return err
	}
	if op.attachment != nil {
		// Last writer wins: an id belongs to one upload, so two entries claiming it is
		// the daemon's bug to find, not something the store can resolve.
		return b.attachments.Put(op.attachment, keyTag(op.key))
	}
	return nil
}

type buckets struct {
	entries, states, attachments, meta *bolt.Bucket
}

// writeBuckets returns the buckets, which Open created.
func writeBuckets(tx *bolt.Tx) buckets {
	return buckets{
		entries:     tx.Bucket([]byte(bucketEntries)),
		states:      tx.Bucket([]byte(bucketStates)),
		attachments: tx.Bucket([]byte(bucketAttachments)),
		meta:        tx.Bucket([]byte(bucketMeta)),
	}
}

// unindex removes what the stored value old of key contributes to the indexes.
func (b buckets) unindex(key, old []byte) error {
	o, err := decodeIndexed(key, old)
	if err != nil {
		return err
	}
	if err := b.states.Delete(stateKey(o.State, key)); err != nil {
		return err
	}
	if err := b.addCount(o.State, -1); err != nil {
		return err
	}
	if o.AttachmentID != "" {
		id := []byte(o.AttachmentID)
		// Only drop the mapping if it is still ours: a later entry may have taken the id.
		// (Schema-1 ledgers hold the whole key.)
		if v := b.attachments.Get(id); bytes.Equal(v, keyTag(key)) || bytes.Equal(v, key) {
			return b.attachments.Delete(id)
		}
	}
	return nil
}

func (b buckets) addCount(st State, d int64) error {
	k := []byte(countPrefix + string(st))
	n := d
	if v := b.meta.Get(k); len(v) == 8 {
		n += bytesInt64(v)
	}
	return b.meta.Put(k, int64Bytes(n))
}

func stateKey(st State, key []byte) []byte {
	k := make([]byte, 0, len(st)+1+len(key))
	k = append(k, st...)
	k = append(k, 0)
	return append(k, key...)
}

func int64Bytes(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func bytesInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// Get returns the entry with key, and whether there is one.
func (s *Store) Get(key string) (Entry, bool, error) {
	var (
		e  Entry
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		k := []byte(key)
		v := tx.Bucket([]byte(bucketEntries)).Get(k)
		if v == nil {
			return nil
		}
		var err error
		e, err = decode(k, v)
		ok = err == nil
		return err
	})
	return e, ok, err
}

// ByState returns up to limit entries in state st (all of them if limit <= 0), in key
// order, read through the state index rather than a scan of every entry.
func (s *Store) ByState(st State, limit int) ([]Entry, error) {
	if !st.valid() {
		return nil, fmt.Errorf("store: unknown state %q", st)
	}
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		entries := tx.Bucket([]byte(bucketEntries))
		prefix := stateKey(st, nil)
		c := tx.Bucket([]byte(bucketStates)).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			key := k[len(prefix):]
			v := entries.Get(key)
			if v == nil {
				return fmt.Errorf("store: ledger state index names missing entry %q", key)
			}
			e, err := decode(key, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ByPath returns every identity (size, mtime) recorded for path, in key order.
func (s *Store) ByPath(path string) ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(pathPrefix(path))
		c := tx.Bucket([]byte(bucketEntries)).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Each calls fn for every entry in key order until fn returns false. fn runs outside any
// transaction, so it may call Put or Delete: a bbolt writer that must grow the file
// waits for open readers, and fn inside a read transaction would deadlock it. Entries
// are read a page at a time, so changes made during the walk may or may not be seen.
func (s *Store) Each(fn func(Entry) bool) error {
	var after []byte
	for {
		page := make([]Entry, 0, eachPage)
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(bucketEntries)).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && len(page) < eachPage; k, v = c.Next() {
				e, err := decode(k, v)
				if err != nil {
					return err
				}
				page = append(page, e)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if !fn(e) {
				return nil
			}
		}
		if len(page) < eachPage {
			return nil
		}
	}
}

// Counts returns how many entries are in each state; every State is present, zero
// included. It reads counters kept by Put and Delete, so its cost does not grow with
// the ledger.
func (s *Store) Counts() (map[State]int, error) {
	out := make(map[State]int, 4)
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		for _, st := range []State{Pending, Uploading, Uploaded, Failed} {
			out[st] = 0
			if v := meta.Get([]byte(countPrefix + string(st))); len(v) == 8 {
				out[st] = int(bytesInt64(v))
			}
		}
		return nil
	})
	return out, err
}

// AttachmentTaken reports whether some entry records id as its attachment.
func (s *Store) AttachmentTaken(id string) (bool, error) {
	tag, err := s.attachmentTag(id)
	return tag != nil, err
}

// attachmentTag is what the index holds for id: the owner's keyTag, or nil.
func (s *Store) attachmentTag(id string) (tag []byte, err error) {
	if id == "" {
		return nil, nil
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucketAttachments)).Get([]byte(id)); v != nil {
			tag = bytes.Clone(v)
		}
		return nil
	})
	return tag, err
}

// keyTag stands for an entry key in the attachment index. The index only has to say
// whether an id is taken and let its owner, and no other entry, remove it; 8 bytes of a
// hash do that, where the whole key made the index twice the size (measured: 24 MB of
// a 100 MB ledger for 100,000 files, and bbolt maps the whole file).
func keyTag(key []byte) []byte {
	h := sha256.Sum256(key)
	return h[:8]
}
