package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crmdrop/config"
)

// attachedPerFile counts the fake's stored attachments by record and file name.
func (h *harness) attachedPerFile() map[string]int {
	out := map[string]int{}
	for _, a := range h.fake.Uploads() {
		out[a.Module+"/"+a.RecordID+"/"+a.FileName]++
	}
	return out
}

// Staff add a customer's name to a record folder while its files upload: every file is
// attached once and ends in _uploaded/, none twice.
func TestRenameRecordFolderDuringUploads(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.Workers = 2 })
	h.fake.SetLatency(150 * time.Millisecond) // uploads are in flight when the rename lands
	const n = 12
	for i := range n {
		h.drop(fmt.Sprintf("Leads/1000000231009/scan%02d.pdf", i), fmt.Sprintf("page %d", i))
	}
	h.start()
	waitFor(t, "the first upload", 10*time.Second, func() bool { return len(h.fake.Uploads()) >= 1 })
	if err := os.Rename(h.path("Leads/1000000231009"), h.path("Leads/1000000231009 Acme Ltd")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every file in _uploaded/", 30*time.Second, func() bool {
		ents, _ := filepath.Glob(h.path("_uploaded/Leads/*/scan*.pdf"))
		return len(ents) == n
	})
	per := h.attachedPerFile()
	for i := range n {
		name := fmt.Sprintf("Leads/1000000231009/scan%02d.pdf", i)
		if per[name] != 1 {
			t.Errorf("%s attached %d times, want 1", name, per[name])
		}
	}
	if got := len(h.fake.Uploads()); got != n {
		t.Errorf("attachments stored = %d, want %d", got, n)
	}
}

// With after_upload: keep, renaming files and folders within a record, over several
// rescans, attaches nothing again; moving a file into another record attaches it there.
func TestKeepModeRenamesAndMoves(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.AfterUpload = "keep"
		c.RescanInterval = time.Second
	})
	h.drop("Leads/1000000231009/a.pdf", "a")
	h.drop("Leads/1000000231009/b.pdf", "b")
	h.drop("Leads/1000000231009/c.pdf", "c")
	h.start()
	waitFor(t, "three uploads", 10*time.Second, func() bool { return len(h.fake.Uploads()) == 3 })

	steps := []struct{ from, to string }{
		{"Leads/1000000231009", "Leads/1000000231009 Acme Ltd"},
		{"Leads/1000000231009 Acme Ltd/a.pdf", "Leads/1000000231009 Acme Ltd/contract.pdf"},
		{"Leads/1000000231009 Acme Ltd/b.pdf", "Leads/1000000231009 Acme Ltd/scans/b.pdf"},
	}
	for _, s := range steps {
		if err := os.MkdirAll(filepath.Dir(h.path(s.to)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(h.path(s.from), h.path(s.to)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // a rescan and several and settle periods: nothing may be sent
	}
	if got := h.fake.Requests().Uploads; got != 3 {
		t.Fatalf("upload requests after renames within the record = %d, want 3", got)
	}

	// Another record is another intent: attached there as well, once.
	if err := os.MkdirAll(h.path("Leads/3477061000005177002"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(h.path("Leads/1000000231009 Acme Ltd/c.pdf"), h.path("Leads/3477061000005177002/c.pdf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload to the second record", 10*time.Second, func() bool { return len(h.fake.Uploads()) == 4 })
	time.Sleep(time.Second)
	per := h.attachedPerFile()
	for name, want := range map[string]int{
		"Leads/1000000231009/a.pdf":       1,
		"Leads/1000000231009/b.pdf":       1,
		"Leads/1000000231009/c.pdf":       1,
		"Leads/3477061000005177002/c.pdf": 1,
	} {
		if per[name] != want {
			t.Errorf("%s attached %d times, want %d", name, per[name], want)
		}
	}
	if got := h.fake.Requests().Uploads; got != 4 {
		t.Errorf("upload requests = %d, want 4", got)
	}
}

// treeSnapshot lists every name under dir with its size, mode and mtime.
func treeSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var out string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out += fmt.Sprintf("%s %d %v %d\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A share user plants links in _failed/ and _uploaded/ pointing outside the inbox: the
// daemon, which may run as root, writes nothing through them; files it could not move
// stay where they were, and the rest of the inbox goes on.
func TestLinksPlantedWhereTheDaemonWrites(t *testing.T) {
	h := newHarness(t, nil, nil)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "profile.sh"), []byte("# admin's file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := treeSnapshot(t, outside)
	for _, link := range []string{"_failed/Leads/1000000231009", "_uploaded/Leads/1000000231009"} {
		if err := os.MkdirAll(filepath.Dir(h.path(link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, h.path(link)); err != nil {
			t.Fatal(err)
		}
	}
	// The reason file's name for the next refusal, planted as a link to a file outside.
	if err := os.MkdirAll(h.path("_failed/Leads/3477061000005177002"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "profile.sh"), h.path("_failed/Leads/3477061000005177002/setup.exe.error.txt")); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.drop("Leads/1000000231009/setup.exe", "MZ program")
	h.drop("Leads/1000000231009/contract.pdf", "contract")
	h.drop("Leads/3477061000005177002/setup.exe", "MZ program")
	h.drop("Leads/3477061000005177001/ok.pdf", "fine")
	waitFor(t, "the unaffected file in _uploaded/", 10*time.Second, func() bool {
		_, err := os.Stat(h.path("_uploaded/Leads/3477061000005177001/ok.pdf"))
		return err == nil
	})
	waitFor(t, "the refused file next to the planted reason link", 10*time.Second, func() bool {
		_, err := os.Stat(h.path("_failed/Leads/3477061000005177002/setup (2).exe.error.txt"))
		return err == nil
	})
	time.Sleep(time.Second) // a few move retries
	if after := treeSnapshot(t, outside); after != before {
		t.Errorf("the folder outside the inbox changed:\nbefore:\n%safter:\n%s", before, after)
	}
	for _, rel := range []string{"Leads/1000000231009/setup.exe", "Leads/1000000231009/contract.pdf"} {
		if _, err := os.Lstat(h.path(rel)); err != nil {
			t.Errorf("%s should stay in place while its destination is a link: %v", rel, err)
		}
	}
	if got := h.fake.Requests().Uploads; got != 2 {
		t.Errorf("upload requests = %d, want 2 (contract.pdf once, ok.pdf once)", got)
	}
}

// A ledger overwritten with garbage no longer keeps the daemon from starting: it is
// moved aside, kept, and a fresh one takes its place.
func TestGarbageLedgerIsMovedAside(t *testing.T) {
	h := newHarness(t, nil, nil)
	if err := os.MkdirAll(h.cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("not a ledger ", 1000))
	if err := os.WriteFile(filepath.Join(h.cfg.StateDir, "ledger.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.drop("Leads/1000000231009/a.pdf", "a")
	waitFor(t, "the upload", 10*time.Second, func() bool { return len(h.fake.Uploads()) == 1 })
	aside, _ := filepath.Glob(filepath.Join(h.cfg.StateDir, "ledger.db.corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("ledgers moved aside = %v, want one", aside)
	}
	if kept, err := os.ReadFile(aside[0]); err != nil || string(kept) != string(garbage) {
		t.Errorf("the lost ledger was not kept as it was (err %v)", err)
	}
}
