package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"crmdrop/inbox"
)

// moveUnder moves inbox/rel to inbox/top/rel without overwriting anything and returns
// the destination. A source that is already gone is not an error (a stop after the
// move but before the caller noticed): it returns "" and nil.
func moveUnder(inboxDir, top, rel string) (string, error) {
	src := filepath.Join(inboxDir, filepath.FromSlash(rel))
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	dst, err := inbox.MoveUnique(src, filepath.Join(inboxDir, top, filepath.FromSlash(rel)))
	if err != nil {
		return "", fmt.Errorf("move %s to %s: %w", rel, top, err)
	}
	return dst, nil
}
