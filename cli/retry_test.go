package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"crmdrop/admin"
	"crmdrop/zoho/zohotest"
)

// fail puts a file at _failed/failedRel with a reason naming orig, as the daemon does
// (daemon/files.go writeReason).
func (s *setup) fail(failedRel, orig, body string) {
	s.t.Helper()
	p := s.path("_failed/" + failedRel)
	s.write("_failed/"+failedRel, body)
	reason := "crmdrop could not attach this file to Zoho CRM.\r\n\r\n" +
		"File:          " + filepath.Base(p) + "\r\n" +
		"Where it was:  " + orig + "\r\n" +
		"When:          2026-03-04 09:00:00 UTC\r\n\r\n" +
		"What went wrong:\r\n  something\r\n\r\nWhat to do:\r\n  something else\r\n"
	if err := os.WriteFile(p+".error.txt", []byte(reason), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *setup) read(rel string) string {
	s.t.Helper()
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		s.t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

func (s *setup) exists(rel string) bool {
	_, err := os.Lstat(s.path(rel))
	return err == nil
}

func TestRetryCollision(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	rec := "Leads/" + testRecord
	s.fail(rec+"/a.pdf", rec+"/a.pdf", "old a")
	s.fail(rec+"/a (2).pdf", rec+"/a.pdf", "older a") // failed twice under one name
	s.write(rec+"/a.pdf", "new a")                    // staff dropped another since

	code, out, errOut := s.run("retry", rec+"/a.pdf")
	if code != exitOK || errOut != "" {
		t.Fatalf("retry = exit %d, stderr %q", code, errOut)
	}
	if s.read(rec+"/a.pdf") != "new a" {
		t.Error("retry overwrote the file staff dropped since")
	}
	// Both come back, under new names; neither overwrites the other.
	got := map[string]string{s.read(rec + "/a (2).pdf"): "a (2).pdf", s.read(rec + "/a (3).pdf"): "a (3).pdf"}
	if _, ok := got["old a"]; !ok || len(got) != 2 {
		t.Errorf("moved back: %v, want old a and older a as a (2).pdf and a (3).pdf", got)
	}
	if !strings.Contains(out, "moved back  _failed/"+rec+"/a.pdf -> "+rec+"/a (") || !strings.Contains(out, "2 file(s) back in the inbox") {
		t.Errorf("retry stdout = %q", out)
	}
	for _, rel := range []string{"_failed/" + rec + "/a.pdf.error.txt", "_failed/" + rec + "/a (2).pdf.error.txt", "_failed/Leads"} {
		if s.exists(rel) {
			t.Errorf("%s is still there", rel)
		}
	}
	if !s.exists("_failed") {
		t.Error("retry removed _failed/ itself")
	}
}

func TestRetryPaths(t *testing.T) {
	rec := "Leads/" + testRecord
	tests := []struct {
		name  string
		arg   func(s *setup) string
		moved []string // original places now filled
	}{
		{"absolute", func(s *setup) string { return s.path("_failed/" + rec + "/b (2).pdf") }, []string{rec + "/b.pdf"}},
		{"relative to the inbox", func(s *setup) string { return "_failed/" + rec + "/b (2).pdf" }, []string{rec + "/b.pdf"}},
		{"its error.txt", func(s *setup) string { return s.path("_failed/" + rec + "/b (2).pdf.error.txt") }, []string{rec + "/b.pdf"}},
		{"where it was", func(s *setup) string { return rec + "/b.pdf" }, []string{rec + "/b.pdf"}},
		{"record folder where they were", func(s *setup) string { return rec }, []string{rec + "/b.pdf", rec + "/scans/p1.jpg"}},
		{"folder in _failed", func(s *setup) string { return s.path("_failed/Deals") + string(filepath.Separator) }, []string{"Deals/1/setup.exe"}},
		{"everything in _failed", func(s *setup) string { return "_failed" }, []string{rec + "/b.pdf", rec + "/scans/p1.jpg", "Deals/1/setup.exe", "stray.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, nil, cfgOpts{})
			s.fail(rec+"/b (2).pdf", rec+"/b.pdf", "b")
			s.fail(rec+"/scans/p1.jpg", rec+"/scans/p1.jpg", "p1")
			s.fail("Deals/1/setup.exe", "Deals/1/setup.exe", "MZ")
			s.write("_failed/stray.txt", "no reason") // no .error.txt: back to the same path
			code, _, errOut := s.run("retry", tt.arg(s))
			if code != exitOK || errOut != "" {
				t.Fatalf("retry = exit %d, stderr %q", code, errOut)
			}
			for _, rel := range []string{rec + "/b.pdf", rec + "/scans/p1.jpg", "Deals/1/setup.exe", "stray.txt"} {
				if want := slices.Contains(tt.moved, rel); s.exists(rel) != want {
					t.Errorf("%s back in the inbox: %v, want %v", rel, !want, want)
				}
			}
		})
	}
}

func TestRetryAll(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	if code, _, errOut := s.run("retry", "--all-failed"); code != exitFailure || !strings.Contains(errOut, "no failed files in "+s.path("_failed")) {
		t.Errorf("retry --all-failed with none = exit %d, stderr %q", code, errOut)
	}
	s.fail("Leads/1/x.pdf", "Leads/1/x.pdf", "x")
	s.fail("Leads/1/evil.pdf", "../../outside/evil.pdf", "evil") // never leaves the inbox
	s.fail("Leads/1/notes.error.txt", "Leads/1/notes.error.txt", "a failed file with an unlucky name")
	s.fail("Leads/1/gone.pdf", "Leads/1/gone.pdf", "")
	os.Remove(s.path("_failed/Leads/1/gone.pdf")) // its reason stays behind, alone
	code, out, _ := s.run("retry", "--all-failed")
	if code != exitOK {
		t.Fatalf("retry --all-failed = exit %d", code)
	}
	for _, rel := range []string{"Leads/1/x.pdf", "Leads/1/evil.pdf", "Leads/1/notes.error.txt"} {
		if !s.exists(rel) {
			t.Errorf("%s not moved back", rel)
		}
	}
	if s.exists("Leads/1/gone.pdf.error.txt") || !s.exists("_failed/Leads/1/gone.pdf.error.txt") {
		t.Error("a reason without its file was moved as if it were a failed file")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "outside")); err == nil {
		t.Error("retry followed a reason out of the inbox")
	}
	if strings.Count(out, "moved back") != 3 {
		t.Errorf("retry stdout = %q, want 3 files moved back", out)
	}
}

func TestRetryNoMatch(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	s.fail("Leads/1/x.pdf", "Leads/1/x.pdf", "x")
	code, out, errOut := s.run("retry", "Leads/1/nope.pdf", "Leads/1/x.pdf")
	if code != exitFailure {
		t.Errorf("retry with one unknown path = exit %d, want 1", code)
	}
	if want := `crmdrop: no failed file matches "Leads/1/nope.pdf"`; !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr = %q, want one line %q…", errOut, want)
	}
	if !s.exists("Leads/1/x.pdf") || !strings.Contains(out, "moved back") {
		t.Error("the path that matched was not moved back")
	}
	// The inbox outside _failed is not a source: a file already back does not match.
	if code, _, _ := s.run("retry", s.path("Leads/1/x.pdf")); code != exitFailure {
		t.Errorf("retry of a file outside _failed = exit %d, want 1", code)
	}
}

func TestRetryWithDaemon(t *testing.T) {
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{})
	fake.InvalidRecord("Leads", testRecord)
	s.startDaemon(testLog{t})
	rel := "Leads/" + testRecord + "/contract.pdf"
	s.write(rel, "%PDF-1.4 contract")
	waitFor(t, "the file to fail", func() bool { return s.exists("_failed/" + rel + ".error.txt") })

	fake.ValidRecord("Leads", testRecord) // the admin fixed the record
	if code, _, _ := s.run("retry", rel); code != exitOK {
		t.Fatalf("retry = exit %d", code)
	}
	waitFor(t, "the retried upload", func() bool { return s.exists("_uploaded/" + rel) })
	if ups := fake.Uploads(); len(ups) != 1 || ups[0].FileName != "contract.pdf" {
		t.Errorf("uploads = %+v, want contract.pdf once", ups)
	}
	st, err := admin.Fetch(t.Context(), s.admin)
	if err != nil || st.Counts["uploaded"] != 1 || st.Counts["failed"] != 0 {
		t.Errorf("status after the retry = %+v, %v; want 1 uploaded, 0 failed", st.Counts, err)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		want []string
		all  bool
		cfg  string
	}{
		{[]string{"a", "-c", "x.yaml", "b"}, []string{"a", "b"}, false, "x.yaml"},
		{[]string{"-c", "x.yaml", "a"}, []string{"a"}, false, "x.yaml"},
		{[]string{"a", "--all-failed"}, []string{"a"}, true, "config.yaml"},
		{[]string{"a", "--", "-c", "b"}, []string{"a", "-c", "b"}, false, "config.yaml"},
		{[]string{}, nil, false, "config.yaml"},
	}
	for _, tt := range tests {
		fs, cfg := newFlags(Env{Stderr: io.Discard}, "retry")
		all := fs.Bool("all-failed", false, "")
		got, _, ok := parseInterspersed(fs, tt.args)
		if !ok || !slices.Equal(got, tt.want) || *all != tt.all || *cfg != tt.cfg {
			t.Errorf("parseInterspersed(%q) = %q, all %v, -c %q, ok %v; want %q, %v, %q", tt.args, got, *all, *cfg, ok, tt.want, tt.all, tt.cfg)
		}
	}
}

// snapshotTree lists dir recursively without following links (path, mode, size,
// modification time, content or link target): equal snapshots mean nothing was written.
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
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		} else if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRetryNeverFollowsLinks(t *testing.T) {
	const rec = "Leads/" + testRecord
	tests := []struct {
		name string
		// plant makes links in s's inbox to out, a folder outside it.
		plant  func(t *testing.T, s *setup, out string)
		back   []string // original places filled afterwards
		stayed []string // still in _failed afterwards
		stderr []string // its lines, in order (prefixes)
	}{
		{
			name: "_failed/Leads/x to a folder outside",
			plant: func(t *testing.T, s *setup, out string) {
				s.link(out, "_failed/Leads/x")
			},
			back:   []string{rec + "/a.pdf", "Deals/1/b.pdf"},
			stderr: []string{"crmdrop: skipped _failed/Leads/x: it is a link"},
		},
		{
			name: "a failed file that is a link to a file outside",
			plant: func(t *testing.T, s *setup, out string) {
				s.link(filepath.Join(out, "marker.txt"), "_failed/"+rec+"/y.pdf")
			},
			back:   []string{rec + "/a.pdf", "Deals/1/b.pdf"},
			stayed: []string{rec + "/y.pdf"},
			stderr: []string{"crmdrop: skipped _failed/" + rec + "/y.pdf: it is a link"},
		},
		{
			name: "a reason that is a link",
			plant: func(t *testing.T, s *setup, out string) {
				os.Remove(s.path("_failed/Deals/1/b.pdf.error.txt"))
				s.link(filepath.Join(out, "marker.txt"), "_failed/Deals/1/b.pdf.error.txt")
			},
			back:   []string{rec + "/a.pdf", "Deals/1/b.pdf"},
			stayed: []string{"Deals/1/b.pdf.error.txt"},
			stderr: []string{"crmdrop: skipped _failed/Deals/1/b.pdf.error.txt: it is a link"},
		},
		{
			name: "the record folder a file goes back to, to outside",
			plant: func(t *testing.T, s *setup, out string) {
				s.link(out, "Deals/1")
			},
			back:   []string{rec + "/a.pdf"},
			stayed: []string{"Deals/1/b.pdf", "Deals/1/b.pdf.error.txt"},
			stderr: []string{"crmdrop: move _failed/Deals/1/b.pdf back to Deals/1/b.pdf: Deals/1 is a link; crmdrop never writes through links: remove it"},
		},
		{
			name: "the record folder a file goes back to, to another record",
			plant: func(t *testing.T, s *setup, out string) {
				s.write("Deals/2/other.pdf", "another record's file")
				s.link("2", "Deals/1")
			},
			back:   []string{rec + "/a.pdf"},
			stayed: []string{"Deals/1/b.pdf", "Deals/1/b.pdf.error.txt"},
			stderr: []string{"crmdrop: move _failed/Deals/1/b.pdf back to Deals/1/b.pdf: Deals/1 is a link"},
		},
		{
			name: "_failed itself",
			plant: func(t *testing.T, s *setup, out string) {
				os.Rename(s.path("_failed"), s.path("failed-before"))
				s.link(out, "_failed")
			},
			stderr: []string{"crmdrop: _failed is a link; crmdrop never reads through links: remove it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, nil, cfgOpts{})
			out := filepath.Join(t.TempDir(), "outside")
			writeTree(t, out, map[string]string{
				"marker.txt": "outside the inbox",
				// What a walk or a move through a link would find, or make, there.
				testRecord + "/c.pdf":   "outside c",
				"x/a.pdf":               "outside a",
				"1/b.pdf":               "outside b",
				"Leads/x/a.pdf":         "outside a, deeper",
				"Leads/1/c.pdf.txt":     "not a failed file",
				testRecord + "/a.pdf/z": "in the way",
			})
			s.fail(rec+"/a.pdf", rec+"/a.pdf", "a")
			s.fail("Deals/1/b.pdf", "Deals/1/b.pdf", "b")
			tt.plant(t, s, out)
			before := snapshotTree(t, out)
			var beforeRec2 string
			if s.exists("Deals/2") {
				beforeRec2 = snapshotTree(t, s.path("Deals/2"))
			}

			code, _, errOut := s.run("retry", "--all-failed")
			if code != exitFailure {
				t.Errorf("retry = exit %d, want %d", code, exitFailure)
			}
			got := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			if len(got) != len(tt.stderr) {
				t.Errorf("stderr = %q, want %d line(s)", errOut, len(tt.stderr))
			}
			for i, want := range tt.stderr {
				if i >= len(got) || !strings.HasPrefix(got[i], want) {
					t.Errorf("stderr = %q, want line %d to start %q", errOut, i+1, want)
				}
			}
			if after := snapshotTree(t, out); after != before {
				t.Errorf("outside the inbox changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if beforeRec2 != "" && snapshotTree(t, s.path("Deals/2")) != beforeRec2 {
				t.Error("the record folder the link points at changed")
			}
			for _, rel := range tt.back {
				if !s.exists(rel) || s.isLink(rel) {
					t.Errorf("%s not moved back", rel)
				}
			}
			for _, rel := range tt.stayed {
				if !s.exists("_failed/" + rel) {
					t.Errorf("_failed/%s is gone", rel)
				}
			}
		})
	}
}

// link makes inbox/rel a link to target.
func (s *setup) link(target, rel string) {
	s.t.Helper()
	p := s.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		s.t.Skip("no symbolic links here:", err)
	}
}

func (s *setup) isLink(rel string) bool {
	fi, err := os.Lstat(s.path(rel))
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
