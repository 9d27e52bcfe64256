package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is where an entry stands in its upload. The store keeps whatever state it is
// given; which transitions are allowed is the daemon's decision.
type State string

// The states of an entry.
const (
	Pending   State = "pending"
	Uploading State = "uploading"
	Uploaded  State = "uploaded"
	Failed    State = "failed"
)

func (s State) valid() bool {
	switch s {
	case Pending, Uploading, Uploaded, Failed:
		return true
	}
	return false
}

// Entry is one file the daemon has seen. Path, Size and ModTime are its identity: a file
// rewritten in place (new size or mtime) is a new entry with a new Key.
//
// Times come back from the store as the same instant with the same UTC offset; the zone
// name (e.g. "Europe/Berlin") is not kept, and neither is the monotonic clock reading.
type Entry struct {
	Path    string    // slash-separated, relative to the inbox
	Size    int64     // bytes
	ModTime time.Time // Path+Size+ModTime = identity = the key

	Module, RecordID string

	State        State
	Attempts     int
	LastError    string
	AttemptStart time.Time
	AttachmentID string
	SHA256       string
	Link         string // for .url files: the URL attached
	MovedTo      string // where the file went after its end state, relative to the inbox ("_failed/Leads/1/a (2).pdf")
	Created      time.Time
	Updated      time.Time
}

// Key is the entry's identity as a ledger key: Path, NUL, Size, NUL, ModTime in Unix
// nanoseconds. The numbers are fixed-width hex with the sign bit flipped, so byte order
// equals numeric order (negative mtimes included) and keys sort by Path first: NUL sorts
// below every byte a path can hold. Two times that are the same instant in different
// zones give the same key.
func (e Entry) Key() string {
	var b strings.Builder
	b.Grow(len(e.Path) + 2 + 2*16)
	b.WriteString(e.Path)
	b.WriteByte(0)
	writeOrdered(&b, e.Size)
	b.WriteByte(0)
	writeOrdered(&b, e.ModTime.UnixNano())
	return b.String()
}

// writeOrdered writes n as 16 hex digits of n with its sign bit flipped, which makes
// byte-wise order of the text equal to numeric order of n.
func writeOrdered(b *strings.Builder, n int64) {
	var buf [16]byte
	s := strconv.AppendUint(buf[:0], uint64(n)^(1<<63), 16)
	for range 16 - len(s) {
		b.WriteByte('0')
	}
	b.Write(s)
}

// pathPrefix is the start of every key of path.
func pathPrefix(path string) string { return path + "\x00" }

// validate rejects entries whose Key would not identify them.
func (e Entry) validate() error {
	switch {
	case e.Path == "":
		return fmt.Errorf("store: entry has an empty path")
	case strings.IndexByte(e.Path, 0) >= 0:
		return fmt.Errorf("store: entry path %q contains a NUL byte", e.Path)
	case e.Size < 0:
		return fmt.Errorf("store: entry %q has negative size %d", e.Path, e.Size)
	case !time.Unix(0, e.ModTime.UnixNano()).Equal(e.ModTime):
		// UnixNano is undefined outside 1678..2262 (and for the zero Time), so the key
		// would not be this mtime.
		return fmt.Errorf("store: entry %q has mtime %v, outside the range the ledger can key", e.Path, e.ModTime)
	case !e.State.valid():
		return fmt.Errorf("store: entry %q has unknown state %q", e.Path, e.State)
	}
	return nil
}

// record is the on-disk form of an Entry (schema 1). It is separate from Entry so that
// renaming a Go field cannot silently change the file format.
type record struct {
	Path         string    `json:"path"`
	Size         int64     `json:"size"`
	ModTime      time.Time `json:"mtime"`
	Module       string    `json:"module,omitempty"`
	RecordID     string    `json:"record,omitempty"`
	State        State     `json:"state"`
	Attempts     int       `json:"attempts,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	AttemptStart time.Time `json:"attempt_start,omitzero"`
	AttachmentID string    `json:"attachment,omitempty"`
	SHA256       string    `json:"sha256,omitempty"`
	Link         string    `json:"link,omitempty"`
	MovedTo      string    `json:"moved_to,omitempty"`
	Created      time.Time `json:"created,omitzero"`
	Updated      time.Time `json:"updated,omitzero"`
}

func encode(e Entry) ([]byte, error) {
	return json.Marshal(record(e))
}

func decode(key, val []byte) (Entry, error) {
	var r record
	if err := json.Unmarshal(val, &r); err != nil {
		return Entry{}, fmt.Errorf("store: ledger entry %q is corrupt: %w", key, err)
	}
	return Entry(r), nil
}

// indexed is the part of a stored entry that the indexes depend on; decoding only it
// keeps Put from building a whole Entry it does not need.
type indexed struct {
	State        State  `json:"state"`
	AttachmentID string `json:"attachment"`
}

func decodeIndexed(key, val []byte) (indexed, error) {
	var o indexed
	if err := json.Unmarshal(val, &o); err != nil {
		return indexed{}, fmt.Errorf("store: ledger entry %q is corrupt: %w", key, err)
	}
	return o, nil
}
