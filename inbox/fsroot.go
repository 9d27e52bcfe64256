package inbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ErrLink is wrapped by every FS error about a symbolic link (or, on Windows, a
// junction or other reparse point) found where crmdrop would read or write: staff can
// plant one anywhere in the share, and crmdrop runs as root, so none is ever followed.
// The error's text names the link's path inside the inbox.
var ErrLink = errors.New("crmdrop never follows links")

// linkError names the link that stopped an operation. Its text is what an admin reads
// in a log line or in retry's output, so it says what to do.
type linkError struct {
	rel  string
	read bool
}

func (e *linkError) Error() string {
	verb := "writes"
	if e.read {
		verb = "reads"
	}
	return e.rel + " is a link; crmdrop never " + verb + " through links: remove it"
}

func (e *linkError) Is(target error) bool { return target == ErrLink }

// FS does every write crmdrop makes in the inbox through one *os.Root, and never
// follows a link.
//
// The root keeps every operation inside the inbox even when a name is swapped for a
// link between a check and its use; on top of that, each operation Lstats every
// folder on its path, from the top, and refuses (ErrLink) one that is a link, so a
// link that stays inside the inbox (_failed/Leads/1 -> ../../Leads/1) is refused too:
// the root alone would follow it. Missing folders are created one at a time, checked
// the same way, never with MkdirAll.
//
// Paths are slash-separated and relative to the inbox; absolute paths, "..", ".",
// empty or doubled separators, backslashes and NUL are refused (fs.ErrInvalid).
//
// An FS is safe for concurrent use; moves to one destination folder are not
// serialized against each other where hard links are unsupported (see MoveUnique).
type FS struct {
	root *os.Root
}

// OpenFS opens the inbox at dir. dir itself may be reached through a link (an
// admin's choice in the configuration); nothing below it is. Close releases it.
func OpenFS(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &FS{root: r}, nil
}

// Close releases the inbox's handle. Operations after Close fail.
func (f *FS) Close() error { return f.root.Close() }

// Lstat describes rel itself (a link is described, not followed). Every folder above
// rel must be a real folder: ErrLink otherwise.
func (f *FS) Lstat(rel string) (fs.FileInfo, error) {
	if err := checkRel(rel); err != nil {
		return nil, err
	}
	if err := f.checkParents(rel, reading); err != nil {
		return nil, err
	}
	return f.root.Lstat(rel)
}

// ReadDir lists the folder rel, sorted by name. rel and every folder above it must be
// real folders (ErrLink otherwise). The entries describe themselves: a link among them
// is reported as a link (Type() has fs.ModeSymlink), never followed.
func (f *FS) ReadDir(rel string) ([]fs.DirEntry, error) {
	if err := checkRel(rel); err != nil {
		return nil, err
	}
	if err := f.checkParents(rel, reading); err != nil {
		return nil, err
	}
	want, err := f.root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if linkLike(want.Mode()) {
		return nil, &linkError{rel: rel, read: true}
	}
	if !want.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: rel, Err: errNotDir}
	}
	d, err := f.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// The root follows a link swapped in after the Lstat (inside the inbox only):
	// list only the folder that was checked.
	if got, err := d.Stat(); err != nil {
		return nil, err
	} else if !os.SameFile(want, got) {
		return nil, &linkError{rel: rel, read: true}
	}
	entries, err := d.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// Open opens the regular file rel for reading. A link (ErrLink), a folder, a pipe or
// a device is refused: the open does not block on a pipe swapped in after the check
// (O_NONBLOCK on Unix), and the opened file is checked again, so what is read is the
// regular file that was checked. The caller closes the file.
func (f *FS) Open(rel string) (*os.File, error) {
	if err := checkRel(rel); err != nil {
		return nil, err
	}
	if err := f.checkParents(rel, reading); err != nil {
		return nil, err
	}
	want, err := f.root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if err := regularFile(rel, want.Mode()); err != nil {
		return nil, err
	}
	file, err := f.root.OpenFile(rel, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	got, err := file.Stat()
	if err == nil {
		err = regularFile(rel, got.Mode())
	}
	if err == nil && !os.SameFile(want, got) {
		err = fmt.Errorf("%s changed while it was opened; try again", rel)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

// ReadURL reads the Internet Shortcut rel with ParseURLFile (at most 64 KiB), opened
// as Open does: a link, a pipe or anything but a regular file is refused.
func (f *FS) ReadURL(rel string) (string, error) {
	file, err := f.Open(rel)
	if err != nil {
		return "", err
	}
	defer file.Close()
	return ParseURLFile(file)
}

// MoveUnique moves srcRel to wantRel, or to "name (2).ext", "name (3).ext", … when
// wantRel is taken (by anything, a link included, or by another failed file's reason),
// creating folders as needed, and returns the slash-separated path where it went. It
// never overwrites: the file is hard-linked to its new name, which fails on a taken
// name, then its old name is removed; where hard links are unsupported (FAT, some
// shares) a check then a rename stands in, so callers serialize their moves into one
// folder there. A move interrupted between the link and the remove is finished.
//
// srcRel is a regular file or a link, which is moved as itself and never followed
// (staff's planted links go to _failed like any refused file). Every folder above
// srcRel and wantRel must be a real folder: ErrLink otherwise, and nothing is moved.
// A link at the wanted name itself is only a taken name: the file gets the next one,
// and the link is left as it is.
func (f *FS) MoveUnique(srcRel, wantRel string) (string, error) {
	if err := checkRel(srcRel); err != nil {
		return "", err
	}
	if err := checkRel(wantRel); err != nil {
		return "", err
	}
	if err := f.checkParents(srcRel, writing); err != nil {
		return "", err
	}
	srcInfo, err := f.root.Lstat(srcRel)
	if err != nil {
		return "", err
	}
	if m := srcInfo.Mode(); !m.IsRegular() && !linkLike(m) {
		return "", fmt.Errorf("%s is not a file; only files are moved", srcRel)
	}
	if err := f.checkParents(wantRel, creating); err != nil {
		return "", err
	}
	for n := 1; n < 10000; n++ {
		dst := numbered(wantRel, n)
		if fi, err := f.root.Lstat(dst); err == nil {
			if os.SameFile(srcInfo, fi) { // a stop between link and remove: finish it
				return dst, f.root.Remove(srcRel)
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, err := f.root.Lstat(dst + ErrorSuffix); err == nil {
			continue // keep each failed file next to its own reason
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		err := f.place(srcRel, dst)
		if errors.Is(err, fs.ErrExist) {
			continue // taken between the check and the move
		}
		if err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("too many files named like %s", path.Base(wantRel))
}

// place moves src to dst only if dst is free, as the package-level place does (which
// says why a hard link and not a rename), through the root.
func (f *FS) place(src, dst string) error {
	err := f.root.Link(src, dst)
	if err == nil {
		return f.root.Remove(src)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, err := f.root.Lstat(dst); err == nil {
		return fs.ErrExist
	}
	return f.root.Rename(src, dst)
}

// WriteReason writes failedRel+ErrorSuffix, the reason staff read, in the format
// ReasonOrigin reads back; rel is where the file was dropped. The reason file is
// created (O_CREATE|O_EXCL), never written through an existing name: a link there or
// in a folder above it is refused with ErrLink, any other existing file with an error
// that wraps fs.ErrExist (a reason written before a stop is still there). A write that
// fails removes what it created.
func (f *FS) WriteReason(failedRel, rel string, r Reason, now time.Time) error {
	if err := checkRel(failedRel); err != nil {
		return err
	}
	name := failedRel + ErrorSuffix
	if err := f.checkParents(name, writing); err != nil {
		return err
	}
	if fi, err := f.root.Lstat(name); err == nil {
		if linkLike(fi.Mode()) {
			return &linkError{rel: name}
		}
		return &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	file, err := f.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = file.WriteString(reasonText(path.Base(failedRel), rel, r, now))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.root.Remove(name) // a half reason would block the next attempt (O_EXCL)
		return err
	}
	return nil
}

// Remove removes rel: a file, an empty folder, or a link itself (never its target).
// Every folder above rel must be a real folder: ErrLink otherwise.
func (f *FS) Remove(rel string) error {
	if err := checkRel(rel); err != nil {
		return err
	}
	if err := f.checkParents(rel, writing); err != nil {
		return err
	}
	return f.root.Remove(rel)
}

// reasonText is the text of a reason file for the failed file named name. It is the
// text of the package-level WriteReason, which goes once the daemon writes through FS
// (TestReasonTextMatchesWriteReason pins them together until then).
func reasonText(name, rel string, r Reason, now time.Time) string {
	return fmt.Sprintf("crmdrop could not attach this file to Zoho CRM.\r\n\r\n"+
		"File:          %s\r\n"+
		whereLabel+"  %s\r\n"+
		"When:          %s\r\n\r\n"+
		"What went wrong:\r\n  %s\r\n\r\n"+
		"What to do:\r\n  %s\r\n\r\n"+
		"To try again, move the file back into its record folder; crmdrop picks it up by itself.\r\n",
		name, rel, now.Format("2006-01-02 15:04:05 MST"), r.What, r.Fix)
}

// access is what an operation does with a path, for checkParents.
type access int

const (
	reading  access = iota
	writing         // a missing folder is fs.ErrNotExist
	creating        // a missing folder is made
)

// checkParents Lstats each folder above rel, from the top, and refuses any that is a
// link or not a folder. When creating, a missing folder is made (0o755) and checked
// in turn; otherwise it is reported as fs.ErrNotExist.
func (f *FS) checkParents(rel string, a access) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		dir := rel[:i]
		fi, err := f.root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) && a == creating {
			if err = f.root.Mkdir(dir, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = f.root.Lstat(dir) // made by us or by a concurrent move: check it
			}
		}
		if err != nil {
			return err
		}
		if linkLike(fi.Mode()) {
			return &linkError{rel: dir, read: a == reading}
		}
		if !fi.IsDir() {
			return &fs.PathError{Op: "lstat", Path: dir, Err: errNotDir}
		}
	}
	return nil
}

var errNotDir = errors.New("is a file, not a folder")

// regularFile refuses anything but a regular file at rel.
func regularFile(rel string, m fs.FileMode) error {
	switch {
	case linkLike(m):
		return &linkError{rel: rel, read: true}
	case !m.IsRegular():
		return fmt.Errorf("%s is not a regular file (a folder, pipe or device); crmdrop only reads files", rel)
	}
	return nil
}

// linkLike reports a symbolic link, or on Windows a junction, mount point or other
// reparse point: Go reports a junction as a folder with ModeIrregular, and a real
// folder never has that bit, so here (unlike the watcher's test for files) a folder
// with it counts as a link too.
func linkLike(m fs.FileMode) bool {
	return m&(fs.ModeSymlink|fs.ModeIrregular) != 0
}

// checkRel refuses a path that is not a plain slash-separated path inside the inbox.
// The root would refuse an escape anyway; this also keeps out names that the root
// accepts but that are not what a caller means ("a/../b", "a\b" on Windows).
func checkRel(rel string) error {
	if rel == "" || rel == "." || path.IsAbs(rel) || path.Clean(rel) != rel ||
		rel == ".." || strings.HasPrefix(rel, "../") || strings.ContainsAny(rel, "\\\x00") ||
		filepath.VolumeName(filepath.FromSlash(rel)) != "" ||
		runtime.GOOS == "windows" && strings.Contains(rel, ":") { // "a.pdf:x" is a stream of a.pdf
		return &fs.PathError{Op: "check", Path: rel, Err: fs.ErrInvalid}
	}
	return nil
}
