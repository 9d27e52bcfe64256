package inbox

import (
	"strings"
	"testing"
)

func TestSkip(t *testing.T) {
	tests := []struct {
		rel   string
		isDir bool
		globs []string
		want  bool
	}{
		// crmdrop's own and hidden top-level folders, and everything in them.
		{"_uploaded", true, nil, true},
		{"_failed/Leads/1/setup.exe", false, nil, true},
		{"_failed/Leads/1/setup.exe.error.txt", false, nil, true},
		{"_anything", false, nil, true},
		{".git", true, nil, true},
		{".snapshot/Leads/1/a.pdf", false, nil, true},
		// "_" is crmdrop's only at the top.
		{"Leads/_drafts", true, nil, false},
		{"Leads/1/_draft.pdf", false, nil, false},

		// Ordinary files and folders.
		{"", true, nil, false},
		{".", true, nil, false},
		{"Leads", true, nil, false},
		{"Leads/1000000231009", true, nil, false},
		{"Leads/1/contract.pdf", false, nil, false},
		{"Leads/1/website.url", false, nil, false},
		{"Leads/1/notes.tmpl", false, nil, false},
		{"Leads/1/parts.pdf", false, nil, false},
		{"Leads/1/thumbs.db.pdf", false, nil, false},
		{"Leads/1/my~$file.docx", false, nil, false},
		{"Leads/1/report.tmp.pdf", false, nil, false},

		// Hidden names at any depth, including AppleDouble and LibreOffice locks.
		{"Leads/1/.hidden", false, nil, true},
		{"Leads/1/._contract.pdf", false, nil, true},
		{"Leads/1/.~lock.contract.odt#", false, nil, true},
		{"Leads/1/.DS_Store", false, nil, true},
		{"Leads/.DS_Store", false, nil, true},
		{"Leads/1/.cache/a.pdf", false, nil, true},
		// Office owner files.
		{"Leads/1/~$contract.docx", false, nil, true},
		// Incomplete downloads and temporary files, any case.
		{"Leads/1/a.tmp", false, nil, true},
		{"Leads/1/A.TMP", false, nil, true},
		{"Leads/1/~WRL0001.tmp", false, nil, true},
		{"Leads/1/a.pdf.part", false, nil, true},
		{"Leads/1/a.pdf.PART", false, nil, true},
		{"Leads/1/a.pdf.crdownload", false, nil, true},
		{"Leads/1/a.pdf.CrDownload", false, nil, true},
		{"Leads/1/a.pdf.partial", false, nil, true},
		{"Leads/1/a.pdf.Partial", false, nil, true},
		// What Windows, Synology and DFS leave in shares, any case.
		{"Leads/1/Thumbs.db", false, nil, true},
		{"Leads/1/THUMBS.DB", false, nil, true},
		{"Leads/1/desktop.ini", false, nil, true},
		{"Leads/Desktop.ini", false, nil, true},
		{"$RECYCLE.BIN", true, nil, true},
		{"Leads/$Recycle.Bin/S-1-5-21/a.pdf", false, nil, true},
		{"@eaDir", true, nil, true},
		{"Leads/1/@eaDir/a.pdf@SynoEAStream", false, nil, true},
		{"Leads/1/@EADIR", true, nil, true},
		{"DfsrPrivate", true, nil, true},
		{"Leads/DFSRPRIVATE/x", false, nil, true},
		// NAS snapshot folders, at any depth, any case.
		{"#snapshot", true, nil, true},
		{"#snapshot/Leads/1/a.pdf", false, nil, true},
		{"Leads/#Snapshot/1/a.pdf", false, nil, true},
		{"Leads/1/#SNAPSHOT", true, nil, true},
		{"~snapshot", true, nil, true},
		{"~SnapShot/Leads/1/a.pdf", false, nil, true},
		{"Leads/1/~snapshot/hourly.0/a.pdf", false, nil, true},
		{".SNAPSHOT", true, nil, true},
		{"Leads/1/.snapshot/a.pdf", false, nil, true},
		{"Leads/1/snapshot/a.pdf", false, nil, false},
		{"Leads/1/#snapshot.pdf", false, nil, false},
		{"Leads/1/my~snapshot", false, nil, false},

		// User globs: against each name, case-insensitively.
		{"Leads/1/a.bak", false, []string{"*.bak"}, true},
		{"Leads/1/A.BAK", false, []string{"*.bak"}, true},
		{"Leads/1/a.bak.pdf", false, []string{"*.bak"}, false},
		{"Leads/1/a.pdf", false, []string{"*.bak", "*.pdf"}, true},
		{"Leads/1/old.bak/a.pdf", false, []string{"*.bak"}, true},
		{"Leads/1/draft-2.pdf", false, []string{"draft-?.pdf"}, true},
		{"Leads/1/a.pdf", false, []string{"[", "a.pdf"}, true}, // a bad glob matches nothing, the next still works
		{"Leads/1/a.pdf", false, []string{"["}, false},
		{"Leads/1/a.pdf", false, []string{""}, false},
		// Globs with "/" match the path from the root.
		{"Leads/1/drafts", true, []string{"Leads/*/drafts"}, true},
		{"Leads/1/drafts/a.pdf", false, []string{"Leads/*/drafts"}, true},
		{"leads/1/DRAFTS/a.pdf", false, []string{"Leads/*/drafts"}, true},
		{"Deals/1/drafts/a.pdf", false, []string{"Leads/*/drafts"}, false},
		{"Leads/1/a.pdf", false, []string{"Leads/1/*.pdf"}, true},
		{"Leads/1/x/a.pdf", false, []string{"Leads/1/*.pdf"}, false},
		{"scratch", true, []string{"/scratch"}, true},
		{"scratch/a/b.pdf", false, []string{"/scratch"}, true},
		{"Leads/scratch", true, []string{"/scratch"}, false},
		// A trailing "/" matches directories only.
		{"Leads/1/old", true, []string{"old/"}, true},
		{"Leads/1/old/a.pdf", false, []string{"old/"}, true},
		{"Leads/1/old", false, []string{"old/"}, false},
		{"Leads/1/old", true, []string{"Leads/*/old/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			if got := Skip(tt.rel, tt.isDir, tt.globs); got != tt.want {
				t.Errorf("Skip(%q, %v, %q) = %v, want %v", tt.rel, tt.isDir, tt.globs, got, tt.want)
			}
		})
	}
}

// TestSkipParents pins that whatever is skipped as a folder is skipped with
// everything under it, so a scan that does descend agrees with one that does not.
func TestSkipParents(t *testing.T) {
	globs := []string{"*.bak", "Leads/*/drafts", "old/"}
	dirs := []string{
		"_failed", ".git", "Leads/1/.cache", "Leads/$RECYCLE.BIN", "Leads/1/@eaDir",
		"DfsrPrivate", "Leads/1/x.bak", "Leads/1/drafts", "Leads/1/old",
	}
	for _, d := range dirs {
		if !Skip(d, true, globs) {
			t.Errorf("Skip(%q, true) = false, want true", d)
			continue
		}
		for _, below := range []string{d + "/a.pdf", d + "/sub/a.pdf"} {
			if !Skip(below, false, globs) {
				t.Errorf("Skip(%q, false) = false under skipped %q, want true", below, d)
			}
		}
	}
}

// FuzzSkip checks that a skipped folder hides everything under it, whatever
// the names and globs.
func FuzzSkip(f *testing.F) {
	f.Add("Leads/1/a.pdf", "*.bak")
	f.Add("Leads/1/old.bak/a.pdf", "*.bak")
	f.Add("Leads/1/drafts/x/a.pdf", "Leads/*/drafts")
	f.Add("_failed/Leads/1/a.pdf", "")
	f.Add("Leads/$RECYCLE.BIN/x", "[")
	f.Add("Leads/1/old/a", "old/")
	f.Fuzz(func(t *testing.T, rel, glob string) {
		globs := []string{glob}
		got := Skip(rel, false, globs)
		// Parents by cutting at each "/", not path.Dir: that cleans "a//b".
		for i := strings.LastIndexByte(rel, '/'); i > 0; i = strings.LastIndexByte(rel[:i], '/') {
			if dir := rel[:i]; Skip(dir, true, globs) && !got {
				t.Fatalf("Skip(%q, true, %q) = true but Skip(%q, false) = false", dir, globs, rel)
			}
		}
	})
}
