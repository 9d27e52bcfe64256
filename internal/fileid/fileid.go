// Package fileid reads a file's file-system identity: what stays the same when the
// file is renamed or moved within its volume, so the ledger can tell a renamed file
// from a new one.
//
// Identities are hints, never proof: some network file systems report zero or reuse
// numbers, so callers pair an identity with the file's size and modification time
// and never skip or delete a file on identity alone.
package fileid

import "io/fs"

// Of returns the identity of the file at path, whose Lstat result is fi: "dev:ino" on
// Unix, "vol:index" on Windows, "" when the file system gives none that can be trusted
// (a zero inode or index). It never follows a link: on Windows it opens the reparse
// point itself, on Unix it reads fi alone.
func Of(path string, fi fs.FileInfo) string { return of(path, fi) }
