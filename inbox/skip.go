package inbox

import (
	"path"
	"strings"
)

// Skip reports whether crmdrop must not look at rel (slash-separated, relative
// to the inbox root) at all: it is never uploaded, moved or reported. A
// skipped directory is skipped with everything under it, and Skip agrees:
// it is true for any rel that has a skipped folder among its parents.
//
// Skipped are top-level entries starting with "_" (crmdrop's _uploaded and
// _failed) or "."; and at any depth hidden names (".*", which covers "._*",
// ".~lock.*#" and ".DS_Store"), Office owner files "~$*", partial downloads
// and temporary files ("*.tmp", "*.part", "*.crdownload", "*.partial"), and
// the names Windows, Synology and DFS put in shares ("Thumbs.db",
// "desktop.ini", "$RECYCLE.BIN", "@eaDir", "DfsrPrivate"), and NAS snapshot
// folders ("#snapshot" on Synology; ".snapshot" and, over SMB, "~snapshot"
// on NetApp), which hold read-only copies of files that were uploaded or
// moved long ago. These are compared case-insensitively, as on the Windows
// shares staff use.
//
// globs are the configuration's ignore patterns (path.Match syntax), also
// case-insensitive. A glob without "/" is matched against each name in rel; a
// glob with "/" against the path from the root ("Leads/*/drafts", or "/tmp"
// for a top-level tmp only). A glob ending in "/" matches directories only.
// A malformed glob matches nothing; the configuration should reject it.
//
// isDir says whether rel itself is a directory. Skip is safe for concurrent use.
func Skip(rel string, isDir bool, globs []string) bool {
	if rel == "" || rel == "." {
		return false
	}
	if rel[0] == '_' || rel[0] == '.' {
		return true
	}
	start := 0
	for {
		end := strings.IndexByte(rel[start:], '/')
		last := end < 0
		if last {
			end = len(rel)
		} else {
			end += start
		}
		name := rel[start:end]
		if ignoredName(name) || matchGlobs(globs, name, rel[:end], isDir || !last) {
			return true
		}
		if last {
			return false
		}
		start = end + 1
	}
}

// ignoredName reports whether a file or folder name is one crmdrop never
// touches wherever it appears.
func ignoredName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~$") {
		return true
	}
	lower := strings.ToLower(name)
	switch lower {
	case "thumbs.db", "desktop.ini", "$recycle.bin", "@eadir", "dfsrprivate",
		"#snapshot", "~snapshot", ".snapshot":
		return true
	}
	switch path.Ext(lower) {
	case ".tmp", ".part", ".crdownload", ".partial":
		return true
	}
	return false
}

// matchGlobs reports whether any user glob matches name, whose path from the
// inbox root is rel.
func matchGlobs(globs []string, name, rel string, isDir bool) bool {
	for _, g := range globs {
		dirOnly := strings.HasSuffix(g, "/")
		if dirOnly {
			if !isDir {
				continue
			}
			g = strings.TrimSuffix(g, "/")
		}
		subject := name
		if strings.Contains(g, "/") {
			g = strings.TrimPrefix(g, "/")
			subject = rel
		}
		if g == "" {
			continue
		}
		if ok, _ := path.Match(strings.ToLower(g), strings.ToLower(subject)); ok {
			return true
		}
	}
	return false
}
