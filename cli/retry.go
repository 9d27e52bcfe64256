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
	failed, err := failedFiles(inboxDir)
	if err != nil {
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
				if !slices.ContainsFunc(picked, func(p failedFile) bool { return p.abs == f.abs }) {
					picked = append(picked, f)
				}
			}
		}
	}

	moved := 0
	for _, f := range picked {
		dst, err := moveBack(inboxDir, f)
		if err != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
			code = exitFailure
			continue
		}
		moved++
		fmt.Fprintf(env.Stdout, "moved back  %s -> %s\n", f.rel, dst)
		if f.reason != "" {
			if err := os.Remove(f.reason); err != nil && !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(env.Stderr, "crmdrop: %s is back, but its %s could not be deleted: %v\n", dst, filepath.Base(f.reason), cause(err))
			}
		}
		pruneEmpty(filepath.Join(inboxDir, failedDir), filepath.Dir(f.abs))
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

// failedFile is a file in _failed/ and where it came from.
type failedFile struct {
	abs    string // its path now
	rel    string // slash-separated, relative to the inbox: "_failed/Leads/1/a (2).pdf"
	orig   string // slash-separated, relative to the inbox: where it was dropped
	reason string // its .error.txt, "" when there is none
}

// failedFiles lists the failed files under inbox/_failed (the .error.txt files are their
// reasons, not failed files, unless no file of theirs is next to them and they are not
// crmdrop's). A missing _failed/ holds none.
func failedFiles(inboxDir string) ([]failedFile, error) {
	root := filepath.Join(inboxDir, failedDir)
	var paths []string
	have := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if p == root && !d.IsDir() {
			return nil // not a folder: crmdrop put nothing there
		}
		if !d.IsDir() { // files, and links (which are moved, never followed)
			paths = append(paths, p)
			have[p] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []failedFile
	for _, p := range paths {
		if strings.HasSuffix(p, errorSuffix) && have[strings.TrimSuffix(p, errorSuffix)] {
			continue // the reason of the file next to it
		}
		if strings.HasSuffix(p, errorSuffix) && isReason(p) {
			continue // a reason whose file was taken away
		}
		rel, _ := filepath.Rel(inboxDir, p)
		f := failedFile{abs: p, rel: filepath.ToSlash(rel), orig: strings.TrimPrefix(filepath.ToSlash(rel), failedDir+"/")}
		if have[p+errorSuffix] {
			f.reason = p + errorSuffix
			if o := whereItWas(f.reason); o != "" {
				f.orig = o
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// isReason reports whether the file at p reads like crmdrop's .error.txt.
func isReason(p string) bool { return whereItWas(p) != "" }

// whereItWas reads the original place from an .error.txt; "" when it names none
// inside the inbox.
func whereItWas(reasonPath string) string {
	f, err := os.Open(reasonPath)
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
	root := filepath.Join(inboxDir, failedDir)
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
		if !insideDir(root, c) {
			continue
		}
		for _, f := range failed {
			if f.abs == c || f.reason == c || strings.HasPrefix(f.abs, c+string(filepath.Separator)) || c == root {
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

// moveBack moves f to its original place, numbering the name if it is taken, and
// returns where it went, relative to the inbox.
func moveBack(inboxDir string, f failedFile) (string, error) {
	dst, err := inbox.MoveUnique(f.abs, filepath.Join(inboxDir, filepath.FromSlash(f.orig)))
	if err != nil {
		return "", fmt.Errorf("move %s back to %s: %v", f.rel, f.orig, cause(err))
	}
	rel, _ := filepath.Rel(inboxDir, dst)
	return filepath.ToSlash(rel), nil
}

// pruneEmpty removes dir and its parents up to (not including) root while they are
// empty, so that _failed/ does not fill up with empty record folders.
func pruneEmpty(root, dir string) {
	for dir != root && insideDir(root, dir) {
		if os.Remove(dir) != nil { // not empty (or not ours to remove): stop
			return
		}
		dir = filepath.Dir(dir)
	}
}
