package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Top-level folders crmdrop owns inside the inbox. Their leading "_" keeps the watcher
// out of them.
const (
	uploadedDir = "_uploaded"
	failedDir   = "_failed"
)

// moveUnder moves inbox/rel to inbox/top/rel, creating folders as needed, and never
// overwrites: a taken name becomes "name (2).ext", "name (3).ext", …. It returns the
// destination. A source that is already gone is not an error (a crash after the move
// but before the caller noticed): it returns "" and nil.
func moveUnder(inboxDir, top, rel string) (string, error) {
	src := filepath.Join(inboxDir, filepath.FromSlash(rel))
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	want := filepath.Join(inboxDir, top, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		return "", fmt.Errorf("move %s: %w", rel, err)
	}
	for n := 1; n < 10000; n++ {
		dst := numbered(want, n)
		if _, err := os.Lstat(dst); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("move %s: %w", rel, err)
		}
		// Only this process writes under top, so the check above cannot race with
		// another writer; a staff member creating the same name in the same instant
		// is the one case left, and rename on Windows refuses to overwrite anyway.
		if _, err := os.Lstat(dst + errorSuffix); err == nil {
			continue // keep each failed file next to its own reason
		}
		if err := os.Rename(src, dst); err != nil {
			return "", fmt.Errorf("move %s to %s: %w", rel, top, err)
		}
		return dst, nil
	}
	return "", fmt.Errorf("move %s: too many files named alike in %s", rel, top)
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

const errorSuffix = ".error.txt"

// reason is what staff read in a .error.txt: what went wrong and what to do about it.
type reason struct {
	What string
	Fix  string
}

// writeReason writes failedPath+".error.txt" in plain language.
func writeReason(failedPath, rel string, r reason, now time.Time) error {
	text := fmt.Sprintf("crmdrop could not attach this file to Zoho CRM.\r\n\r\n"+
		"File:          %s\r\n"+
		"Where it was:  %s\r\n"+
		"When:          %s\r\n\r\n"+
		"What went wrong:\r\n  %s\r\n\r\n"+
		"What to do:\r\n  %s\r\n\r\n"+
		"To try again, move the file back into its record folder; crmdrop picks it up by itself.\r\n",
		filepath.Base(failedPath), rel, now.Format("2006-01-02 15:04:05 MST"), r.What, r.Fix)
	return os.WriteFile(failedPath+errorSuffix, []byte(text), 0o644)
}
