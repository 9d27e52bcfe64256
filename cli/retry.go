package cli

import (
	"crmdrop/inbox"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

const (
	failedDir   = inbox.FailedDir
	errorSuffix = inbox.ErrorSuffix
)

// cmdRetry moves failed files back to where they were dropped, as staff would, and
// deletes their .error.txt: the daemon's watcher then takes each as a staff retry. No
// ledger write is needed, so it works whether the daemon runs or not. A name taken in
// the meantime is never overwritten: the file comes back as "name (2).ext".
func cmdRetry(env Env, args []string) int {
	flags, cfgPath := newFlags(env, "retry")
	all := flags.Bool("all-failed", false, "move every file in _failed/ back")
	paths, code, ok := parseInterspersed(flags, args)
	if !ok {
		return code
	}
	switch {
	case *all && len(paths) > 0:
		fmt.Fprintln(env.Stderr, "crmdrop: give either --all-failed or paths, not both; usage: crmdrop retry [--all-failed | PATH...] [-c config.yaml]")
		return exitUsage
	case !*all && len(paths) == 0:
		fmt.Fprintln(env.Stderr, "crmdrop: say which files to retry: crmdrop retry [--all-failed | PATH...] [-c config.yaml]; a PATH is a file in _failed/ or where it was dropped (Leads/1000000231009/contract.pdf)")
		return exitUsage
	}
	lc, ok := adminConfig(env, *cfgPath, credsOptional)
	if !ok {
		return exitUsage
	}
	inboxDir := lc.cfg.Inbox
	if fi, err := os.Stat(inboxDir); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: inbox %s cannot be opened (%v); mount or create it first\n", inboxDir, cause(err))
		return exitFailure
	} else if !fi.IsDir() {
		fmt.Fprintf(env.Stderr, "crmdrop: inbox %s is a file, not a folder; fix \"inbox\" in the configuration\n", inboxDir)
		return exitFailure
	}
	// Staff control every name in _failed/ and the record folders, and retry often runs
	// as root: every read and write below goes through fsys, which follows no link.
	fsys, err := inbox.OpenFS(inboxDir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: inbox %s cannot be opened (%v); mount or create it first\n", inboxDir, cause(err))
		return exitFailure
	}
	defer fsys.Close()
	failed, err := failedFiles(fsys)
	if errors.Is(err, inbox.ErrLink) {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	} else if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: read %s: %v\n", filepath.Join(inboxDir, failedDir), err)
		return exitFailure
	}

	var picked []failedFile
	code = exitOK
	if *all {
		picked = failed
		if len(picked) == 0 {
			fmt.Fprintf(env.Stderr, "crmdrop: no failed files in %s\n", filepath.Join(inboxDir, failedDir))
			return exitFailure
		}
	} else {
		cwd, _ := os.Getwd()
		for _, arg := range paths {
			m := matchFailed(failed, inboxDir, cwd, arg)
			if len(m) == 0 {
				fmt.Fprintf(env.Stderr, "crmdrop: no failed file matches %q: give a file in %s, or the path it was dropped at (e.g. Leads/1000000231009/contract.pdf); \"crmdrop list --state failed\" lists them\n",
					arg, filepath.Join(inboxDir, failedDir))
				code = exitFailure
			}
			for _, f := range m {
				if !slices.ContainsFunc(picked, func(p failedFile) bool { return p.rel == f.rel }) {
					picked = append(picked, f)
				}
			}
		}
	}

	moved := 0
	for _, f := range picked {
		if f.link {
			// Moved back, it would only fail again (the daemon uploads no link); and its
			// target is not crmdrop's to touch.
			fmt.Fprintf(env.Stderr, "crmdrop: skipped %s: it is a link, and crmdrop never follows or moves back links; remove it\n", f.rel)
			code = exitFailure
			continue
		}
		dst, err := moveBack(fsys, f)
		if err != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
			code = exitFailure
			continue
		}
		moved++
		fmt.Fprintf(env.Stdout, "moved back  %s -> %s\n", f.rel, dst)
		if f.reason != "" {
			if err := fsys.Remove(f.reason); err != nil && !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(env.Stderr, "crmdrop: %s is back, but its %s could not be deleted: %v\n", dst, path.Base(f.reason), cause(err))
			}
		}
		pruneEmpty(fsys, path.Dir(f.rel))
	}
	if moved > 0 {
		fmt.Fprintf(env.Stdout, "%d file(s) back in the inbox; crmdrop uploads them once they settle (at its next start if it is not running)\n", moved)
	}
	return code
}

// parseInterspersed parses flags wherever they stand among the positional arguments
// ("retry a.pdf -c /etc/crmdrop/config.yaml"): the flag package alone stops at the first
// non-flag. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, 0, true
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(positional, rest...), 0, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// failedFile is a file in _failed/ and where it came from. Paths are slash-separated
// and relative to the inbox.
type failedFile struct {
	rel    string // its path now: "_failed/Leads/1/a (2).pdf"
	orig   string // where it was dropped
	reason string // its .error.txt, "" when there is none
	link   bool   // a link (planted, or dropped by staff): never moved back
}

// failedFiles lists the failed files under _failed (the .error.txt files are their
// reasons, not failed files, unless no file of theirs is next to them and they are not
// crmdrop's). A missing _failed/ holds none. A link, to a file or to a folder, is
// listed as a link and never descended into; _failed itself being one is an error
// that wraps inbox.ErrLink.
func failedFiles(fsys *inbox.FS) ([]failedFile, error) {
	fi, err := fsys.Lstat(failedDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case !fi.IsDir() && fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) == 0:
		return nil, nil // not a folder: crmdrop put nothing there
	}
	var found []failedFile
	kind := map[string]fs.FileMode{} // of each name found, for pairing reasons
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := dir + "/" + e.Name()
			t := e.Type()
			switch {
			case t&(fs.ModeSymlink|fs.ModeIrregular) != 0:
				found = append(found, failedFile{rel: p, link: true})
			case t.IsDir():
				if err := walk(p); errors.Is(err, inbox.ErrLink) {
					found = append(found, failedFile{rel: p, link: true}) // swapped for a link since listed
				} else if err != nil {
					return err
				}
				continue
			default: // files, and pipes and the like, which the move refuses
				found = append(found, failedFile{rel: p})
			}
			kind[p] = t
		}
		return nil
	}
	if err := walk(failedDir); err != nil {
		return nil, err
	}
	var out []failedFile
	for _, f := range found {
		if base, ok := strings.CutSuffix(f.rel, errorSuffix); ok && !f.link {
			if _, ok := kind[base]; ok {
				continue // the reason of the file next to it
			}
			if isReason(fsys, f.rel) {
				continue // a reason whose file was taken away
			}
		}
		f.orig = strings.TrimPrefix(f.rel, failedDir+"/")
		if kind[f.rel+errorSuffix].IsRegular() { // a link is no reason: it is listed itself
			f.reason = f.rel + errorSuffix
			if o := whereItWas(fsys, f.reason); o != "" {
				f.orig = o
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// isReason reports whether the file at rel reads like crmdrop's .error.txt.
func isReason(fsys *inbox.FS, rel string) bool { return whereItWas(fsys, rel) != "" }

// whereItWas reads the original place from an .error.txt; "" when it names none
// inside the inbox, or it cannot be read as a regular file.
func whereItWas(fsys *inbox.FS, reasonRel string) string {
	f, err := fsys.Open(reasonRel)
	if err != nil {
		return ""
	}
	defer f.Close()
	return inbox.ReasonOrigin(f)
}

// matchFailed returns the failed files arg names: a file or folder in _failed/ (absolute,
// relative to the inbox, or relative to the working folder), the .error.txt of one, or
// the place files were dropped at (a file, or a folder such as a record folder).
func matchFailed(failed []failedFile, inboxDir, cwd, arg string) []failedFile {
	var cands []string
	if filepath.IsAbs(arg) {
		cands = []string{filepath.Clean(arg)}
	} else {
		cands = []string{filepath.Join(inboxDir, arg)}
		if cwd != "" {
			cands = append(cands, filepath.Join(cwd, arg))
		}
	}
	var out []failedFile
	for _, c := range cands {
		rel, ok := inboxRel(inboxDir, c)
		if !ok || rel != failedDir && !strings.HasPrefix(rel, failedDir+"/") {
			continue
		}
		for _, f := range failed {
			if f.rel == rel || f.reason == rel || strings.HasPrefix(f.rel, rel+"/") || rel == failedDir {
				out = append(out, f)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	orig := path.Clean(filepath.ToSlash(arg))
	for _, f := range failed {
		if f.orig == orig || strings.HasPrefix(f.orig, orig+"/") {
			out = append(out, f)
		}
	}
	return out
}

// inboxRel returns p relative to the inbox, slash-separated, if p is inside it. It
// compares names only: resolving links here would read the share, and a path given
// through a link would not name the file the listing found anyway.
func inboxRel(inboxDir, p string) (string, bool) {
	base, err1 := filepath.Abs(inboxDir)
	p, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(base, p)
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// moveBack moves f to its original place, numbering the name if it is taken, and
// returns where it went, relative to the inbox.
func moveBack(fsys *inbox.FS, f failedFile) (string, error) {
	dst, err := fsys.MoveUnique(f.rel, f.orig)
	if err != nil {
		return "", fmt.Errorf("move %s back to %s: %v", f.rel, f.orig, cause(err))
	}
	return dst, nil
}

// pruneEmpty removes dir and its parents up to (not including) _failed while they are
// empty, so that _failed/ does not fill up with empty record folders.
func pruneEmpty(fsys *inbox.FS, dir string) {
	for strings.HasPrefix(dir, failedDir+"/") {
		if fsys.Remove(dir) != nil { // not empty (or not ours to remove): stop
			return
		}
		dir = path.Dir(dir)
	}
}
