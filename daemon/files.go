package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"crmdrop/inbox"
)

// moveUnder moves inbox/rel to inbox/top/rel through the inbox's root, never through a
// link and never overwriting, and returns the destination (slash-separated, relative).
// A source that is already gone is not an error (a stop after the move but before the
// caller noticed): it returns "" and nil.
func moveUnder(inboxDir, top, rel string) (string, error) {
	root, err := inbox.OpenFS(inboxDir)
	if err != nil {
		return "", fmt.Errorf("move %s to %s: %w", rel, top, err)
	}
	defer root.Close()
	if _, err := root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	dst, err := root.MoveUnique(rel, path.Join(top, rel))
	if err != nil {
		return "", fmt.Errorf("move %s to %s: %w", rel, top, err)
	}
	return dst, nil
}

// withFS runs fn on a root opened on the inbox for this one operation: a root kept open
// would go on pointing at the old folder after a share is remounted.
func withFS(inboxDir string, fn func(*inbox.FS) error) error {
	root, err := inbox.OpenFS(inboxDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fn(root)
}
