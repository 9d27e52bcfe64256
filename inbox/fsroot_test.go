package inbox

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshotTree lists dir recursively without following links: each entry's path,
// mode, size, modification time and, for a file, a hash of its content; for a link,
// where it points. Two equal snapshots mean nothing under dir was written.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d %d", filepath.ToSlash(rel), fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// symlink makes link point at target, or skips the test where links cannot be made
// (Windows without the privilege).
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openFS(t *testing.T, dir string) *FS {
	t.Helper()
	f, err := OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// linkFixture is an inbox with a file to move (Leads/123/a.pdf) and a record folder
// that a link inside the inbox can point at (Leads/999), next to an "outside" folder
// that a link can point out to. Both targets hold the same tree, with the names the
// operations under test use, so that one followed through a link would find its way
// and show in a snapshot.
type linkFixture struct {
	in, out string
}

func newLinkFixture(t *testing.T) linkFixture {
	t.Helper()
	x := linkFixture{in: t.TempDir(), out: t.TempDir()}
	writeFile(t, filepath.Join(x.in, "Leads/123/a.pdf"), "the file")
	for _, dir := range []string{x.out, filepath.Join(x.in, "Leads/999")} {
		writeFile(t, filepath.Join(dir, "marker.txt"), "a link's target")
		writeFile(t, filepath.Join(dir, "123/marker.txt"), "a link's target, deeper")
		writeFile(t, filepath.Join(dir, "Leads/123/marker.txt"), "a link's target, deeper still")
		if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// target is where a planted link points: a folder (for a link as a folder on the
// path) or a file (for a link as the final name), outside the inbox or inside it.
func (x linkFixture) target(outside, file bool) string {
	dir := filepath.Join(x.in, "Leads/999")
	if outside {
		dir = x.out
	}
	if file {
		return filepath.Join(dir, "marker.txt")
	}
	return dir
}

// plant makes inbox/rel a link to target; a target inside the inbox is written as a
// relative link, as a share user would make one that stays valid over the share.
func (x linkFixture) plant(t *testing.T, rel, target string, outside bool) {
	t.Helper()
	link := filepath.Join(x.in, filepath.FromSlash(rel))
	if !outside {
		var err error
		if target, err = filepath.Rel(filepath.Dir(link), target); err != nil {
			t.Fatal(err)
		}
	}
	symlink(t, target, link)
}

func TestFSRefusesLinks(t *testing.T) {
	reason := Reason{What: "It broke.", Fix: "Do this."}
	now := time.Unix(0, 0).UTC()
	move := func(src, want string) func(*FS) error {
		return func(f *FS) error { _, err := f.MoveUnique(src, want); return err }
	}
	tests := []struct {
		name string
		link string // planted as a link
		file bool   // the link points at a file (else at a folder)
		op   func(*FS) error
	}{
		{"_failed", "_failed", false, move("Leads/123/a.pdf", "_failed/Leads/123/a.pdf")},
		{"_failed/Leads", "_failed/Leads", false, move("Leads/123/a.pdf", "_failed/Leads/123/a.pdf")},
		{"_failed/Leads/123", "_failed/Leads/123", false, move("Leads/123/a.pdf", "_failed/Leads/123/a.pdf")},
		{"_uploaded", "_uploaded", false, move("Leads/123/a.pdf", "_uploaded/Leads/123/a.pdf")},
		{"_uploaded/Leads", "_uploaded/Leads", false, move("Leads/123/a.pdf", "_uploaded/Leads/123/a.pdf")},
		{"_uploaded/Leads/123", "_uploaded/Leads/123", false, move("Leads/123/a.pdf", "_uploaded/Leads/123/a.pdf")},
		{"_uploaded/Leads/123/scans", "_uploaded/Leads/123/scans", false, move("Leads/123/a.pdf", "_uploaded/Leads/123/scans/a.pdf")},
		{"source's folder", "Leads/777", false, move("Leads/777/marker.txt", "_failed/Leads/777/marker.txt")},
		{"retry's destination folder", "Leads/555", false, move("Leads/123/a.pdf", "Leads/555/a.pdf")},
		{"reason: _failed/Leads/123", "_failed/Leads/123", false, func(f *FS) error {
			return f.WriteReason("_failed/Leads/123/a.pdf", "Leads/123/a.pdf", reason, now)
		}},
		{"reason: _failed", "_failed", false, func(f *FS) error {
			return f.WriteReason("_failed/Leads/123/a.pdf", "Leads/123/a.pdf", reason, now)
		}},
		{"reason: its own name", "_failed/Leads/123/a.pdf.error.txt", true, func(f *FS) error {
			return f.WriteReason("_failed/Leads/123/a.pdf", "Leads/123/a.pdf", reason, now)
		}},
		{"remove: a folder above", "_failed/Leads", false, func(f *FS) error {
			return f.Remove("_failed/Leads/123/marker.txt")
		}},
		{"remove: an empty folder, below a link", "_failed/Leads/123", false, func(f *FS) error {
			return f.Remove("_failed/Leads/123/empty")
		}},
		{"read shortcut: itself", "Leads/123/site.url", true, func(f *FS) error {
			_, err := f.ReadURL("Leads/123/site.url")
			return err
		}},
		{"read shortcut: a folder above", "Leads/777", false, func(f *FS) error {
			_, err := f.ReadURL("Leads/777/marker.txt")
			return err
		}},
		{"open: itself", "_failed/Leads/123/a.pdf.error.txt", true, func(f *FS) error {
			file, err := f.Open("_failed/Leads/123/a.pdf.error.txt")
			if err == nil {
				file.Close()
			}
			return err
		}},
		{"read folder: itself", "_failed/Leads", false, func(f *FS) error {
			_, err := f.ReadDir("_failed/Leads")
			return err
		}},
		{"read folder: a folder above", "_failed", false, func(f *FS) error {
			_, err := f.ReadDir("_failed/Leads")
			return err
		}},
		{"lstat: a folder above", "_failed/Leads", false, func(f *FS) error {
			_, err := f.Lstat("_failed/Leads/123")
			return err
		}},
	}
	for _, tt := range tests {
		for _, outside := range []bool{true, false} {
			where := "inside"
			if outside {
				where = "outside"
			}
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				x := newLinkFixture(t)
				target := x.target(outside, tt.file)
				x.plant(t, tt.link, target, outside)
				watched := x.out
				if !outside {
					watched = filepath.Join(x.in, "Leads/999")
				}
				before := snapshotTree(t, watched)
				f := openFS(t, x.in)

				err := tt.op(f)
				if !errors.Is(err, ErrLink) {
					t.Errorf("err = %v, want ErrLink", err)
				} else if want := tt.link + " is a link"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to name the link (%q)", err, want)
				}
				if after := snapshotTree(t, watched); after != before {
					t.Errorf("the link's target changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if b, err := os.ReadFile(filepath.Join(x.in, "Leads/123/a.pdf")); err != nil || string(b) != "the file" {
					t.Errorf("the source is %q, %v; want it where it was", b, err)
				}
			})
		}
	}
}

// A link at the wanted name, or at its reason's name, is only a taken name: the file
// goes to the next name, and the link and what it points at stay as they are.
func TestFSMoveUniqueNextToLink(t *testing.T) {
	for _, link := range []string{"_failed/Leads/123/a.pdf", "_failed/Leads/123/a.pdf.error.txt"} {
		for _, outside := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/outside=%v", link, outside), func(t *testing.T) {
				x := newLinkFixture(t)
				x.plant(t, link, x.target(outside, true), outside)
				beforeOut, beforeIn := snapshotTree(t, x.out), snapshotTree(t, filepath.Join(x.in, "Leads/999"))
				beforeLink := snapshotTree(t, filepath.Join(x.in, "_failed"))
				f := openFS(t, x.in)

				got, err := f.MoveUnique("Leads/123/a.pdf", "_failed/Leads/123/a.pdf")
				if want := "_failed/Leads/123/a (2).pdf"; err != nil || got != want {
					t.Fatalf("MoveUnique = %q, %v; want %q", got, err, want)
				}
				if b, err := os.ReadFile(filepath.Join(x.in, filepath.FromSlash(got))); err != nil || string(b) != "the file" {
					t.Errorf("%s holds %q, %v; want the file", got, b, err)
				}
				if snapshotTree(t, x.out) != beforeOut || snapshotTree(t, filepath.Join(x.in, "Leads/999")) != beforeIn {
					t.Error("a write went through the link")
				}
				fi, err := os.Lstat(filepath.Join(x.in, filepath.FromSlash(link)))
				if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("the link is now %v, %v; want it left alone", fi, err)
				}
				if !strings.Contains(beforeLink, link[len("_failed/"):]) {
					t.Fatalf("snapshot before lacks the link:\n%s", beforeLink)
				}
			})
		}
	}
}

func TestFSMoveUniqueNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	f := openFS(t, dir)
	var got []string
	for i := range 3 {
		writeFile(t, filepath.Join(dir, "in.pdf"), fmt.Sprint(i))
		dst, err := f.MoveUnique("in.pdf", "out/deeper/report.pdf")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dst)
	}
	// A reason file alone also blocks a name: it belongs to a file moved back by staff.
	writeFile(t, filepath.Join(dir, "out/deeper/report (4).pdf"+ErrorSuffix), "")
	writeFile(t, filepath.Join(dir, "in.pdf"), "x")
	dst, err := f.MoveUnique("in.pdf", "out/deeper/report.pdf")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, dst)
	w := "out/deeper/report.pdf|out/deeper/report (2).pdf|out/deeper/report (3).pdf|out/deeper/report (5).pdf"
	if strings.Join(got, "|") != w {
		t.Errorf("names = %q, want %q", got, w)
	}
	for i, rel := range got[:3] {
		if b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel))); string(b) != fmt.Sprint(i) {
			t.Errorf("%s holds %q, want %q", rel, b, fmt.Sprint(i))
		}
	}
}

func TestFSMoveUniqueNumbering(t *testing.T) {
	tests := []struct {
		taken []string // names already in out/
		want  string
		got   string
	}{
		{nil, "report.pdf", "out/report.pdf"},
		{[]string{"report.pdf"}, "report.pdf", "out/report (2).pdf"},
		{[]string{"report.pdf", "report (2).pdf"}, "report.pdf", "out/report (3).pdf"},
		{[]string{"report.pdf.error.txt"}, "report.pdf", "out/report (2).pdf"},
		{[]string{"report.pdf/"}, "report.pdf", "out/report (2).pdf"}, // a folder takes a name too
		{[]string{"archive.tar.gz"}, "archive.tar.gz", "out/archive.tar (2).gz"},
		{[]string{".env"}, ".env", "out/.env (2)"},
		{[]string{"README"}, "README", "out/README (2)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.taken, ","), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.taken {
				if dirName, ok := strings.CutSuffix(name, "/"); ok {
					os.MkdirAll(filepath.Join(dir, "out", dirName), 0o755)
					continue
				}
				writeFile(t, filepath.Join(dir, "out", name), "taken")
			}
			writeFile(t, filepath.Join(dir, "src"), "new")
			got, err := openFS(t, dir).MoveUnique("src", "out/"+tt.want)
			if err != nil || got != tt.got {
				t.Errorf("MoveUnique(src, out/%s) = %q, %v; want %q", tt.want, got, err, tt.got)
			}
		})
	}
}

func TestFSMoveUniqueConcurrentNeverLoses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "out/a.pdf"), "already there")
	f := openFS(t, dir)
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		src := fmt.Sprintf("src%d", i)
		writeFile(t, filepath.Join(dir, src), fmt.Sprint(i))
		go func() { _, err := f.MoveUnique(src, "out/a.pdf"); errs <- err }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(entries) != n+1 {
		t.Errorf("%d files in the destination, want %d: a move overwrote another", len(entries), n+1)
	}
}

func TestFSMoveUniqueFinishesInterruptedLink(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pdf"), "x")
	os.MkdirAll(filepath.Join(dir, "out"), 0o755)
	if err := os.Link(filepath.Join(dir, "a.pdf"), filepath.Join(dir, "out/a.pdf")); err != nil {
		t.Skip("no hard links here:", err)
	}
	dst, err := openFS(t, dir).MoveUnique("a.pdf", "out/a.pdf")
	if err != nil || dst != "out/a.pdf" {
		t.Fatalf("MoveUnique = %q, %v; want out/a.pdf", dst, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a.pdf")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("source still there")
	}
}

// A link staff dropped into a record folder goes to _failed as itself: moved, not
// followed, and what it points at is untouched.
func TestFSMoveUniqueMovesLinkItself(t *testing.T) {
	x := newLinkFixture(t)
	x.plant(t, "Leads/123/shortcut", x.target(true, true), true)
	before := snapshotTree(t, x.out)
	f := openFS(t, x.in)
	got, err := f.MoveUnique("Leads/123/shortcut", "_failed/Leads/123/shortcut")
	if err != nil || got != "_failed/Leads/123/shortcut" {
		t.Fatalf("MoveUnique = %q, %v", got, err)
	}
	target, err := os.Readlink(filepath.Join(x.in, "_failed/Leads/123/shortcut"))
	if err != nil || target != x.target(true, true) {
		t.Errorf("moved link points at %q, %v; want %q", target, err, x.target(true, true))
	}
	if _, err := os.Lstat(filepath.Join(x.in, "Leads/123/shortcut")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the link is still in the record folder")
	}
	if snapshotTree(t, x.out) != before {
		t.Error("moving the link changed what it points at")
	}
}

func TestFSMoveUniqueRefusesFolder(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "Leads/123/scans"), 0o755)
	if _, err := openFS(t, dir).MoveUnique("Leads/123/scans", "_failed/Leads/123/scans"); err == nil {
		t.Error("MoveUnique moved a folder")
	}
}

func TestFSRefusesBadPaths(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pdf"), "x")
	f := openFS(t, dir)
	for _, rel := range []string{"", ".", "..", "../x", "/etc/passwd", "a/../a.pdf", "./a.pdf", "a//b", "a/", `a\b`, "a\x00b"} {
		ops := map[string]error{}
		_, ops["Lstat"] = f.Lstat(rel)
		_, ops["ReadDir"] = f.ReadDir(rel)
		_, ops["ReadURL"] = f.ReadURL(rel)
		_, ops["MoveUnique src"] = f.MoveUnique(rel, "b.pdf")
		_, ops["MoveUnique want"] = f.MoveUnique("a.pdf", rel)
		ops["WriteReason"] = f.WriteReason(rel, "a.pdf", Reason{}, time.Time{})
		ops["Remove"] = f.Remove(rel)
		for op, err := range ops {
			if !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("%s(%q) = %v, want fs.ErrInvalid", op, rel, err)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.pdf")); err != nil || string(b) != "x" {
		t.Errorf("a.pdf = %q, %v; want it untouched", b, err)
	}
}

func TestFSWriteReason(t *testing.T) {
	dir := t.TempDir()
	f := openFS(t, dir)
	rel := "Leads/1000000231009 Acme/scans/a.pdf"
	r := Reason{What: "It broke.", Fix: "Do this."}
	if err := f.WriteReason("_failed/"+rel, rel, r, time.Unix(0, 0).UTC()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteReason in a missing folder = %v, want fs.ErrNotExist (it creates no folders)", err)
	}
	writeFile(t, filepath.Join(dir, "_failed", rel), "the file")
	if err := f.WriteReason("_failed/"+rel, rel, r, time.Unix(0, 0).UTC()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "_failed", rel+ErrorSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"It broke.", "Do this.", "File:          a.pdf\r\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("reason file lacks %q:\n%s", s, b)
		}
	}
	if got := ReasonOrigin(strings.NewReader(string(b))); got != rel {
		t.Errorf("ReasonOrigin = %q, want %q", got, rel)
	}
	// Created exclusively: a second reason does not replace the first.
	err = f.WriteReason("_failed/"+rel, rel, Reason{What: "other"}, time.Now())
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteReason = %v, want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "_failed", rel+ErrorSuffix)); string(again) != string(b) {
		t.Error("second WriteReason changed the reason file")
	}
}

func TestReasonTextMatchesWriteReason(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a (2).pdf")
	r := Reason{What: "It broke.", Fix: "Do this."}
	now := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	if err := WriteReason(p, "Leads/1/a.pdf", r, now); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(p + ErrorSuffix)
	if got := reasonText("a (2).pdf", "Leads/1/a.pdf", r, now); got != string(old) {
		t.Errorf("reasonText = %q, want WriteReason's %q", got, old)
	}
}

func TestFSRemove(t *testing.T) {
	x := newLinkFixture(t)
	x.plant(t, "_failed/Leads/123/link", x.target(true, true), true)
	os.MkdirAll(filepath.Join(x.in, "_failed/Leads/456"), 0o755)
	before := snapshotTree(t, x.out)
	f := openFS(t, x.in)
	for _, rel := range []string{"Leads/123/a.pdf", "_failed/Leads/123/link", "_failed/Leads/456"} {
		if err := f.Remove(rel); err != nil {
			t.Errorf("Remove(%q) = %v", rel, err)
		}
		if _, err := os.Lstat(filepath.Join(x.in, filepath.FromSlash(rel))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there", rel)
		}
	}
	if err := f.Remove("Leads/999/123"); err == nil {
		t.Error("Remove removed a folder that is not empty")
	}
	if snapshotTree(t, x.out) != before {
		t.Error("removing a link changed what it points at")
	}
}

func TestFSReadURL(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Leads/1/site.url"), "[InternetShortcut]\r\nURL=https://example.com/a\r\n")
	writeFile(t, filepath.Join(dir, "Leads/1/big.url"), "[InternetShortcut]\r\nURL=https://example.com/a\r\n"+strings.Repeat(";", 64<<10))
	os.MkdirAll(filepath.Join(dir, "Leads/1/folder.url"), 0o755)
	f := openFS(t, dir)
	if got, err := f.ReadURL("Leads/1/site.url"); err != nil || got != "https://example.com/a" {
		t.Errorf("ReadURL(site.url) = %q, %v", got, err)
	}
	if _, err := f.ReadURL("Leads/1/big.url"); err == nil || !strings.Contains(err.Error(), "64 KiB") {
		t.Errorf("ReadURL(big.url) = %v, want too big", err)
	}
	if _, err := f.ReadURL("Leads/1/folder.url"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadURL(folder.url) = %v, want not a regular file", err)
	}
	if _, err := f.ReadURL("Leads/1/gone.url"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadURL(gone.url) = %v, want fs.ErrNotExist", err)
	}
}

func TestFSReadDir(t *testing.T) {
	x := newLinkFixture(t)
	x.plant(t, "Leads/123/out", x.target(true, false), true)
	var names []string
	entries, err := openFS(t, x.in).ReadDir("Leads/123")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, fmt.Sprintf("%s:%v", e.Name(), e.Type()))
	}
	if got, want := strings.Join(names, " "), "a.pdf:---------- out:L---------"; got != want {
		t.Errorf("ReadDir = %s, want %s (a link listed as a link)", got, want)
	}
}
