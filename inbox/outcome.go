package inbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The folders where files end up, inside the inbox. Their leading "_" keeps the
// watcher out of them (see Skip).
const (
	UploadedDir = "_uploaded"
	FailedDir   = "_failed"
	// ErrorSuffix names the reason file written next to a failed file.
	ErrorSuffix = ".error.txt"
)

// whereLabel starts the line of a reason file that names the file's original place;
// `crmdrop retry` reads it back, so its wording is part of the format.
const whereLabel = "Where it was:"

// MoveUnique moves src to want, or to "name (2).ext", "name (3).ext", … when want is
// taken (by a file or by another failed file's reason), creating folders as needed. It
// never overwrites and returns where the file went.
func MoveUnique(src, want string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		return "", err
	}
	srcInfo, err := os.Lstat(src)
	if err != nil {
		return "", err
	}
	for n := 1; n < 10000; n++ {
		dst := numbered(want, n)
		if fi, err := os.Lstat(dst); err == nil {
			if os.SameFile(srcInfo, fi) { // a stop between link and remove: finish it
				return dst, os.Remove(src)
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, err := os.Lstat(dst + ErrorSuffix); err == nil {
			continue // keep each failed file next to its own reason
		}
		err := place(src, dst)
		if errors.Is(err, fs.ErrExist) {
			continue // taken between the check and the move
		}
		if err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("too many files named like %s", filepath.Base(want))
}

// place moves src to dst only if dst does not exist. A hard link is created atomically
// and fails on an existing name, where rename would replace it (on Windows too: Go's
// rename uses MOVEFILE_REPLACE_EXISTING). File systems without hard links (FAT, some
// shares) fall back to a check then a rename; callers serialize their own moves.
func place(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		return os.Remove(src)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, err := os.Lstat(dst); err == nil {
		return fs.ErrExist
	}
	return os.Rename(src, dst)
}

// numbered returns p with " (n)" before its extension, or p itself for n == 1.
func numbered(p string, n int) string {
	if n == 1 {
		return p
	}
	dir, base := filepath.Split(p)
	ext := filepath.Ext(base)
	if ext == base { // ".env"-like names: number the whole name
		ext = ""
	}
	return dir + strings.TrimSuffix(base, ext) + fmt.Sprintf(" (%d)", n) + ext
}

// Reason is what staff read in a reason file: what went wrong and what to do.
type Reason struct {
	What string
	Fix  string
}

// WriteReason writes failedPath+ErrorSuffix in plain language. rel is where the file
// was dropped (slash-separated, relative to the inbox).
func WriteReason(failedPath, rel string, r Reason, now time.Time) error {
	text := fmt.Sprintf("crmdrop could not attach this file to Zoho CRM.\r\n\r\n"+
		"File:          %s\r\n"+
		whereLabel+"  %s\r\n"+
		"When:          %s\r\n\r\n"+
		"What went wrong:\r\n  %s\r\n\r\n"+
		"What to do:\r\n  %s\r\n\r\n"+
		"To try again, move the file back into its record folder; crmdrop picks it up by itself.\r\n",
		filepath.Base(failedPath), rel, now.Format("2006-01-02 15:04:05 MST"), r.What, r.Fix)
	return os.WriteFile(failedPath+ErrorSuffix, []byte(text), 0o644)
}

// ReasonOrigin reads back where a failed file was dropped from its reason file: a
// slash-separated path inside the inbox, or "" when the text names none (or names
// something outside the inbox or in crmdrop's own folders).
func ReasonOrigin(r io.Reader) string {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), whereLabel)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || path.IsAbs(v) || path.Clean(v) != v || strings.ContainsAny(v, "\\\x00") ||
			filepath.VolumeName(v) != "" || v == ".." || strings.HasPrefix(v, "../") || v[0] == '_' || v[0] == '.' {
			return ""
		}
		return v
	}
	return ""
}
