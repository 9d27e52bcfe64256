// Package store is crmdrop's ledger: one bbolt file holding an Entry for every file the
// daemon has seen, indexed by state, by Zoho attachment id and by file-system identity,
// with per-state counts, and the ledger's own id and recovery state.
// It stores and indexes and holds no policy: which state changes are allowed, and when,
// is the daemon's decision.
package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"crmdrop/internal/clock"
)

// schemaVersion is the ledger format this build writes. Bump it when the meaning of a
// bucket or of the record encoding changes; Open refuses files with a higher number.
// Schema 3 added Placement, Verify and FileID to the values and the ids bucket.
const schemaVersion = 3

// Bucket names, and keys inside the meta bucket.
const (
	bucketEntries     = "entries"     // Entry.Key() -> encoded entry (entry.go)
	bucketStates      = "states"      // state NUL key -> empty
	bucketAttachments = "attachments" // attachment id -> keyTag(Entry.Key())
	bucketIDs         = "ids"         // Entry.FileID -> Entry.Key() (schema 3)
	bucketMeta        = "meta"        // metaSchema, metaID, metaRecovery, countPrefix+state -> int64 big-endian

	metaSchema   = "schema"
	metaID       = "id"       // the ledger's id, 16 hex digits
	metaRecovery = "recovery" // JSON of Recovery, while the ledger is in recovery
	countPrefix  = "count/"
)

// indexBuckets are the buckets every ledger has besides meta; ids only from schema 3.
var indexBuckets = []string{bucketEntries, bucketStates, bucketAttachments, bucketIDs}

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

// ErrCorrupt is matched (errors.Is) by the errors that say the ledger file is damaged or
// is not a crmdrop ledger: what OpenOrRecover moves aside. A read or write that finds
// damage after Open (a panic or memory fault inside bbolt) returns one too.
var ErrCorrupt = errors.New("ledger is damaged")

// corruptError is an ErrCorrupt. reason is what is wrong, as a clause that follows
// "cannot be read: "; msg, if set, replaces the whole message (for the errors Open gave
// before OpenOrRecover existed, which tell the user what to do).
type corruptError struct {
	path, reason, msg string
}

func (e *corruptError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("ledger %s cannot be read: %s", e.path, e.reason)
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

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
	// Clock gives OpenOrRecover the time of a recovery. Nil means the system clock.
	Clock clock.Clock
}

// Store is an open ledger. All methods are safe for concurrent use by many goroutines.
// Writes are durable when they return (unless Options.NoSync).
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
	id       string

	mu         sync.Mutex
	queue      []*call // writes waiting for the next commit
	committing bool    // a commit is running; its leader will hand on to queue[0]
}

// Open opens the ledger at path, creating it (and its folder, mode 0700; the file 0600)
// unless opts.ReadOnly. If another process holds the file it fails after opts.Timeout
// with an error matching ErrLocked. It refuses a ledger written by a newer schema.
//
// A file that exists but is not a sound crmdrop ledger (not bbolt, truncated, damaged
// pages, no schema, empty) is refused with an error matching ErrCorrupt and left as it
// is; OpenOrRecover moves such a file aside instead. Open reads every page of the
// file's tree once to make sure of that (about 80 ms for 100,000 entries), because
// bbolt itself would crash the process on some damage rather than return an error.
func Open(path string, opts Options) (*Store, error) { return open(path, opts, false) }

// open is Open; full adds checkContents before anything is written, for OpenOrRecover.
func open(path string, opts Options, full bool) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create ledger folder: %w", err)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case opts.ReadOnly && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("ledger %s does not exist yet (crmdrop creates it when it first runs): %w", path, fs.ErrNotExist)
	case errors.Is(err, fs.ErrNotExist):
		// bbolt creates it.
	case err != nil:
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open ledger %s: not a regular file (%v)", path, fi.Mode().Type())
	case fi.Size() == 0:
		// bbolt would take an empty file for a new one; here it is a ledger that was lost
		// (a crash while it was created, or a file system that truncated it).
		return nil, &corruptError{path: path, reason: "the file is empty"}
	}
	var db *bolt.DB
	if err == nil {
		// The file exists: check its pages before bbolt walks them. A writable bbolt
		// open already reads the free list, so the check runs under a read-only open,
		// which reads nothing but the two header pages and holds the lock meanwhile.
		if err = pageError(path, checkHeader(path)); err != nil {
			return nil, err
		}
		if db, err = boltOpen(path, timeout, true, opts.NoSync); err != nil {
			return nil, err
		}
		if err = pageError(path, checkPages(path)); err != nil {
			_ = db.Close()
			return nil, err
		}
		if full {
			ro := &Store{db: db, path: path, readOnly: true}
			if err = ro.view(ro.checkContents); err != nil {
				_ = db.Close()
				return nil, err
			}
		}
		if !opts.ReadOnly {
			_ = db.Close()
			db = nil
		}
	}
	if db == nil {
		if db, err = boltOpen(path, timeout, false, opts.NoSync); err != nil {
			return nil, err
		}
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		err = s.view(s.checkReadOnly)
	} else {
		err = s.update(s.initSchema)
	}
	if err == nil {
		err = s.view(func(tx *bolt.Tx) error {
			s.id = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaID)))
			return nil
		})
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// pageError names path in an error of checkPages or checkHeader.
func pageError(path string, err error) error {
	var ce *corruptError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		ce.path = path
		return ce
	}
	return fmt.Errorf("read ledger %s: %w", path, err)
}

// boltOpen is bolt.Open with its errors in the store's terms. A panic or memory fault
// inside bbolt (checkPages makes it unlikely, not impossible) is an error too, and the
// file that bbolt opened is closed so that its lock does not outlive the failure.
func boltOpen(path string, timeout time.Duration, readOnly, noSync bool) (db *bolt.DB, err error) {
	var f *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if f != nil {
				_ = f.Close()
			}
			db, err = nil, &corruptError{path: path, reason: fmt.Sprintf("bbolt failed on it (%v)", p)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: readOnly,
		NoSync:   noSync,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			f, err = os.OpenFile(name, flag, perm)
			return f, err
		},
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, &lockedError{path: path}
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, &corruptError{path: path, reason: fmt.Sprintf("it is not a bbolt database, or its header pages are damaged (%v)", err)}
	}
	return nil, fmt.Errorf("open ledger %s: %w", path, err)
}

func (s *Store) initSchema(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return err
	}
	if meta.Get([]byte(metaSchema)) == nil {
		if !unclaimed(tx) {
			return s.checkSchema(tx)
		}
		if err := meta.Put([]byte(metaSchema), int64Bytes(schemaVersion)); err != nil {
			return err
		}
	}
	if err := s.checkSchema(tx); err != nil {
		return err
	}
	// Older schemas differ in how values are encoded and lack the ids bucket, and are
	// still read: mark the file as this schema, so an older crmdrop refuses it instead
	// of misreading the values this build writes.
	if bytesInt64(meta.Get([]byte(metaSchema))) < schemaVersion {
		if err := meta.Put([]byte(metaSchema), int64Bytes(schemaVersion)); err != nil {
			return err
		}
	}
	if meta.Get([]byte(metaID)) == nil {
		if err := meta.Put([]byte(metaID), []byte(newID())); err != nil {
			return err
		}
	}
	for _, name := range indexBuckets {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	return nil
}

// unclaimed reports whether the file is a bbolt file with nothing in it yet (no schema,
// no buckets but an empty meta): only such a file is Open's to make a ledger of.
func unclaimed(tx *bolt.Tx) bool {
	if meta := tx.Bucket([]byte(bucketMeta)); meta != nil && meta.Get([]byte(metaSchema)) != nil {
		return false
	}
	empty := true
	_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		empty = empty && string(name) == bucketMeta
		return nil
	})
	return empty
}

// checkContents is what OpenOrRecover checks beyond Open, on the file as it is: the
// schema and buckets (checkReadOnly), the entries against the indexes (verify), and
// bbolt's own check.
func (s *Store) checkContents(tx *bolt.Tx) error {
	if unclaimed(tx) {
		return nil
	}
	if err := s.checkReadOnly(tx); err != nil {
		return err
	}
	if err := verify(tx); err != nil {
		return err
	}
	return checkTree(tx)
}

// newID is a ledger id: 8 random bytes in hex.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (s *Store) checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	var v []byte
	if meta != nil {
		v = meta.Get([]byte(metaSchema))
	}
	if len(v) != 8 {
		return &corruptError{path: s.path, reason: "it is a bbolt file but not a crmdrop ledger (it has no schema version)",
			msg: fmt.Sprintf("%s is not a crmdrop ledger (no schema version): move it aside and start crmdrop again", s.path)}
	}
	switch n := bytesInt64(v); {
	case n > schemaVersion:
		return fmt.Errorf("ledger %s was written by a newer crmdrop (schema %d; this one reads %d): upgrade crmdrop", s.path, n, schemaVersion)
	case n < 1:
		return &corruptError{path: s.path, reason: fmt.Sprintf("it has an invalid schema version %d", n),
			msg: fmt.Sprintf("ledger %s has an invalid schema version %d", s.path, n)}
	}
	return nil
}

// checkReadOnly is checkSchema plus the buckets that initSchema would otherwise create.
func (s *Store) checkReadOnly(tx *bolt.Tx) error {
	if err := s.checkSchema(tx); err != nil {
		return err
	}
	schema := bytesInt64(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
	for _, name := range indexBuckets {
		if tx.Bucket([]byte(name)) == nil && (name != bucketIDs || schema >= 3) {
			return &corruptError{path: s.path, reason: fmt.Sprintf("it is missing its %s bucket", name),
				msg: fmt.Sprintf("ledger %s is missing its %s bucket: move it aside and start crmdrop again", s.path, name)}
		}
	}
	return nil
}

// view runs fn in a read transaction. A panic inside it, or a memory fault reading the
// mapped file (debug.SetPanicOnFault; by default a fault kills the process), comes back
// as an error matching ErrCorrupt: a damaged page must fail the read, not the daemon.
func (s *Store) view(fn func(*bolt.Tx) error) error { return s.run(s.db.View, "reading", fn) }

// update is view for a write transaction; bbolt rolls the transaction back as the
// panic unwinds.
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.run(s.db.Update, "writing", fn) }

func (s *Store) run(txn func(func(*bolt.Tx) error) error, what string, fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &corruptError{reason: fmt.Sprintf("%s it failed (%v)", what, p)}
		}
		var ce *corruptError
		if errors.As(err, &ce) && ce.path == "" {
			ce.path = s.path
		}
	}()
	return txn(fn)
}

// ID returns the ledger's id: 16 hex digits chosen at random when the ledger was
// created (or, for a ledger from before ids, when it was first opened for writing).
// A fresh ledger made by OpenOrRecover has a new id, so the id tells one ledger's
// history from another's. It is "" only for an older ledger opened read-only.
func (s *Store) ID() string { return s.id }

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
	return s.write(func(tx *bolt.Tx) error { return writeBuckets(tx).delete(k) })
}

// Rekey replaces the entry with oldKey by e, in one transaction: the entry at oldKey (if
// there is one) is deleted and e is put under its own Key, with every index and count
// updated, so no reader sees the file twice or not at all. It is for a file that was
// renamed or moved (a new Path, so a new Key). If oldKey is e.Key() it is Put.
func (s *Store) Rekey(oldKey string, e Entry) error {
	op, err := preparePut(e)
	if err != nil {
		return err
	}
	old := []byte(oldKey)
	return s.write(func(tx *bolt.Tx) error {
		if !bytes.Equal(old, op.key) {
			if err := writeBuckets(tx).delete(old); err != nil {
				return err
			}
		}
		return op.apply(tx)
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
	err := s.update(func(tx *bolt.Tx) error {
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
			c.done <- s.update(func(tx *bolt.Tx) error { return safely(c.fn, tx) })
		}
		return
	}
	for _, c := range calls {
		c.done <- err
	}
}

// safely turns a panic in fn into an error, so that one write cannot leave the other
// writers in its commit waiting forever. The writes are the store's own bucket
// operations, so a panic is bbolt's, on a damaged page: an ErrCorrupt.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &corruptError{reason: fmt.Sprintf("a write to it panicked (%v)", p)}
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
	fileID     []byte
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
	if e.FileID != "" {
		op.fileID = []byte(e.FileID)
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
		if err := b.attachments.Put(op.attachment, keyTag(op.key)); err != nil {
			return err
		}
	}
	if op.fileID != nil {
		// Last writer wins here too: a file system may hand a freed inode to a new file
		// while the old entry stays, and the newest file is the one to find. The value
		// is the whole key (not a keyTag), since ByFileID must find the entry.
		return b.ids.Put(op.fileID, op.key)
	}
	return nil
}

type buckets struct {
	entries, states, attachments, ids, meta *bolt.Bucket
}

// writeBuckets returns the buckets, which Open created.
func writeBuckets(tx *bolt.Tx) buckets {
	return buckets{
		entries:     tx.Bucket([]byte(bucketEntries)),
		states:      tx.Bucket([]byte(bucketStates)),
		attachments: tx.Bucket([]byte(bucketAttachments)),
		ids:         tx.Bucket([]byte(bucketIDs)),
		meta:        tx.Bucket([]byte(bucketMeta)),
	}
}

// delete removes the entry with key and what it contributes to the indexes.
func (b buckets) delete(key []byte) error {
	old := b.entries.Get(key)
	if old == nil {
		return nil
	}
	if err := b.unindex(key, old); err != nil {
		return err
	}
	return b.entries.Delete(key)
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
			if err := b.attachments.Delete(id); err != nil {
				return err
			}
		}
	}
	if o.FileID != "" {
		id := []byte(o.FileID)
		// As above: another entry may hold the identity now.
		if bytes.Equal(b.ids.Get(id), key) {
			return b.ids.Delete(id)
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
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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
		err := s.view(func(tx *bolt.Tx) error {
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
	err := s.view(func(tx *bolt.Tx) error {
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

// ByFileID returns the entry that holds the file-system identity id, and whether there
// is one: the entry most recently Put with that FileID, unless it has since been
// deleted or Put with another FileID (then there is none, even if an older entry still
// records id). An empty id finds nothing.
func (s *Store) ByFileID(id string) (Entry, bool, error) {
	var (
		e  Entry
		ok bool
	)
	if id == "" {
		return e, false, nil
	}
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket([]byte(bucketIDs))
		if ids == nil {
			return nil // an older ledger opened read-only: no identities recorded
		}
		key := ids.Get([]byte(id))
		if key == nil {
			return nil
		}
		v := tx.Bucket([]byte(bucketEntries)).Get(key)
		if v == nil {
			return fmt.Errorf("store: ledger id index names missing entry %q", key)
		}
		var err error
		e, err = decode(key, v)
		ok = err == nil
		return err
	})
	return e, ok, err
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
	err = s.view(func(tx *bolt.Tx) error {
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
