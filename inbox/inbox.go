// Package inbox holds the folder conventions office staff follow: which path
// names which Zoho CRM record (Module/RecordFolder/.../file), which names
// crmdrop must never look at, how an Internet Shortcut (.url) is read, and
// how files are moved and reasons written without following a link (FS).
//
// Apart from FS and the moves and reasons in outcome.go, everything here is a
// pure function of its arguments, so the watcher, the daemon and the tests
// agree by construction.
package inbox

import (
	"crmdrop/internal/editdist"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// standardModules returns the Zoho CRM modules that take attachments, in API
// spelling. Appointments__s and Services__s are system modules whose API names
// really do carry the double underscore. (A function, not a package variable,
// so no caller can change the list for everyone.)
func standardModules() []string {
	return []string{
		"Leads", "Accounts", "Contacts", "Deals", "Campaigns", "Tasks", "Cases",
		"Events", "Calls", "Solutions", "Products", "Vendors", "Price_Books",
		"Quotes", "Sales_Orders", "Purchase_Orders", "Invoices", "Notes",
		"Appointments__s", "Services__s",
	}
}

// maxRecordIDDigits bounds a record id. Zoho ids are 19 digits today; 30 leaves
// room to grow while rejecting a folder named after, say, a phone number list.
const maxRecordIDDigits = 30

// exampleRecord is the record id used in the fixes staff read.
const exampleRecord = "1000000231009"

// Target is the CRM record a file is attached to.
type Target struct {
	Module   string // canonical API spelling, e.g. "Price_Books"
	RecordID string // ASCII digits; kept as a string because ids exceed 2^53
}

// Layout maps inbox paths to records for one set of modules. It is immutable
// after NewLayout and safe for concurrent use.
type Layout struct {
	names []string          // canonical names: standard ones, then custom ones
	byKey map[string]string // foldKey(name) -> canonical name
}

// NewLayout returns the layout for the standard modules plus customModules
// (API names from the configuration). Custom names are trimmed; empty names
// and names that repeat a known module (in any case) are dropped.
func NewLayout(customModules []string) *Layout {
	std := standardModules()
	l := &Layout{byKey: make(map[string]string, len(std)+len(customModules))}
	add := func(name string) {
		name = strings.TrimSpace(name)
		if name == "" {
			return
		}
		k := foldKey(name)
		if _, dup := l.byKey[k]; dup {
			return
		}
		l.byKey[k] = name
		l.names = append(l.names, name)
	}
	for _, m := range std {
		add(m)
	}
	for _, m := range customModules {
		add(m)
	}
	return l
}

// Modules returns the canonical module names, standard ones first, then the
// custom ones in configuration order. The caller owns the returned slice.
func (l *Layout) Modules() []string {
	return append([]string(nil), l.names...)
}

// module returns the canonical name for a module folder name.
func (l *Layout) module(folder string) (string, bool) {
	m, ok := l.byKey[foldKey(folder)]
	return m, ok
}

// foldKey makes "Price Books", "price_books" and "PRICE_BOOKS" equal. Each
// space stands for exactly one underscore: Explorer users type spaces, and
// "Appointments  s" must still reach Appointments__s.
func foldKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, " ", "_"))
}

// Parse maps rel, a slash-separated path relative to the inbox root such as
// "Leads/123 Acme/scans/p1.jpg", to the record its file is attached to:
// the first folder names the module, the second starts with the record id,
// and deeper folders belong to the same record.
//
// On failure the error is a *PathError whose message staff can act on.
func (l *Layout) Parse(rel string) (Target, error) {
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return Target{}, &PathError{
				Path:    rel,
				Problem: "this is not a plain path inside the inbox",
				Fix:     "Move the file into a record folder such as Leads/" + exampleRecord + "/.",
			}
		}
	}
	if len(parts) == 1 {
		return Target{}, &PathError{
			Path:    rel,
			Problem: "the file is not inside a module folder",
			Fix:     "Move it into a record folder such as Leads/" + exampleRecord + "/.",
		}
	}
	module, ok := l.module(parts[0])
	if !ok {
		fix := "Check the spelling; known modules: " + strings.Join(l.names, ", ") + "."
		if s := l.suggest(parts[0]); s != "" {
			fix = "Did you mean " + s + "? Otherwise c" + fix[1:]
		}
		return Target{}, &PathError{
			Path:    rel,
			Problem: fmt.Sprintf("%s is not a CRM module folder", quote(parts[0])),
			Fix:     fix,
		}
	}
	if len(parts) == 2 {
		return Target{}, &PathError{
			Path:    rel,
			Problem: fmt.Sprintf("the file is directly in the %s folder, not in a record folder", quote(parts[0])),
			Fix:     fmt.Sprintf("Put it inside a record folder such as %s/%s/ (the folder name starts with the record id).", parts[0], exampleRecord),
		}
	}
	folder := parts[1]
	n := 0
	for n < len(folder) && folder[n] >= '0' && folder[n] <= '9' {
		n++
	}
	switch {
	case n == 0:
		return Target{}, &PathError{
			Path:    rel,
			Problem: fmt.Sprintf("the folder %s does not start with a record id", quote(folder)),
			Fix: "Rename it so its name starts with the record id, the digits at the end of the record's address in Zoho CRM, such as " +
				quote(exampleRecord+" "+folder) + ".",
		}
	case n > maxRecordIDDigits:
		return Target{}, &PathError{
			Path:    rel,
			Problem: fmt.Sprintf("the folder %s starts with %d digits, too many for a record id", quote(folder), n),
			Fix:     "Rename it so its name starts with the record id, the digits at the end of the record's address in Zoho CRM.",
		}
	}
	return Target{Module: module, RecordID: folder[:n]}, nil
}

// suggest returns the known module closest to a mistyped folder name, or ""
// when none is close enough to be a likely typo.
func (l *Layout) suggest(folder string) string {
	k := foldKey(folder)
	if len(k) < 3 || len(k) > 64 {
		return ""
	}
	best, bestD := "", 3 // at most two edits
	for _, name := range l.names {
		if d := editdist.Distance(k, foldKey(name)); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// PathError says why a file's path names no record. Staff read Error() in the
// .error.txt beside the file, so Problem and Fix are plain language.
type PathError struct {
	Path    string // slash-separated, relative to the inbox
	Problem string // what is wrong, no trailing period
	Fix     string // what to do, a sentence
}

// Error returns "<path>: <problem>. <fix>" on one line.
func (e *PathError) Error() string {
	return oneLine(e.Path) + ": " + oneLine(e.Problem) + ". " + oneLine(e.Fix)
}

// quote puts a folder name in double quotes for a message, escaping only what
// would break the line, so "Société" stays readable.
func quote(s string) string {
	if printable(s) && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return strconv.Quote(s)
}

// oneLine keeps a message on one line even when a name holds a newline or
// invalid UTF-8 (both are legal in Linux file names).
func oneLine(s string) string {
	if printable(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
