package daemon_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/zoho/zohotest"
)

// harness runs the real daemon against the fake CRM over loopback, on a real inbox.
type harness struct {
	t      *testing.T
	cfg    config.Config
	fake   *zohotest.Server
	mu     sync.Mutex
	events []daemon.Event
	stop   context.CancelFunc
	done   chan error
	d      *daemon.Daemon
}

func newHarness(t *testing.T, fake *zohotest.Server, edit func(*config.Config)) *harness {
	t.Helper()
	if fake == nil {
		fake = zohotest.NewServer(t, zohotest.Options{})
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Inbox = filepath.Join(dir, "inbox")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Zoho.AccountsURL = fake.URL()
	cfg.Zoho.APIDomain = fake.URL()
	cfg.Zoho.ClientID = zohotest.DefaultClientID
	cfg.Zoho.ClientSecret = zohotest.DefaultClientSecret
	cfg.Zoho.RefreshToken = zohotest.DefaultRefreshToken
	cfg.Settle = 300 * time.Millisecond
	cfg.RescanInterval = 5 * time.Second
	cfg.Retry.InitialDelay = 10 * time.Millisecond
	cfg.Retry.MaxDelay = 200 * time.Millisecond
	cfg.AdminListen = ""
	if err := os.MkdirAll(cfg.Inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, cfg: cfg, fake: fake}
}

func (h *harness) start() {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.New(daemon.Options{Config: h.cfg, Logger: log, OnEvent: func(ev daemon.Event) {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.stop, h.done = d, cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	h.t.Cleanup(h.shutdown)
}

func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Error("daemon did not stop within 15s")
	}
	h.d.Close()
	h.stop = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) path(rel string) string {
	return filepath.Join(h.cfg.Inbox, filepath.FromSlash(rel))
}

// drop writes a file atomically enough for a test: content appears in one write.
func (h *harness) drop(rel, body string) string {
	h.t.Helper()
	p := h.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) eventCount(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestEndToEndUploadsEachFileOnce(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.CustomModules = []string{"Projects_X"} })
	h.fake.AddModule("Projects_X")
	// Present before start: found by the first scan.
	h.drop("Leads/1000000231009/before.pdf", "was here first")
	h.start()

	type want struct{ module, record, name, body string }
	files := map[string]want{
		"Leads/1000000231009/contract.pdf":                             {"Leads", "1000000231009", "contract.pdf", "%PDF-1.7 contract"},
		"leads/1000000231009/lower-case module.txt":                    {"Leads", "1000000231009", "lower-case module.txt", "x"},
		"Contacts/3477061000005177002 Jane Doe/scans/page1.jpg":        {"Contacts", "3477061000005177002", "page1.jpg", "\xff\xd8jpeg"},
		"Price Books/3477061000000000001/Müller – Vertrag „final“.pdf": {"Price_Books", "3477061000000000001", "Müller – Vertrag „final“.pdf", "unicode"},
		`Deals/3477061000007654321 Acme/O'Brien "copy" #1.txt`:         {"Deals", "3477061000007654321", `O'Brien "copy" #1.txt`, "quotes"},
		"Projects_X/42/plan.txt":                                       {"Projects_X", "42", "plan.txt", "custom module"},
		"Leads/1000000231009/before.pdf":                               {"Leads", "1000000231009", "before.pdf", "was here first"},
	}
	for rel, w := range files {
		if rel != "Leads/1000000231009/before.pdf" {
			h.drop(rel, w.body)
		}
	}
	h.drop("Leads/1000000231009/website.url", "[InternetShortcut]\r\nURL=https://www.example.com/acme\r\n")

	waitFor(t, "all uploads", 20*time.Second, func() bool { return h.eventCount("uploaded") == len(files)+1 })

	got := h.fake.Uploads()
	if len(got) != len(files)+1 {
		t.Fatalf("fake stored %d attachments, want %d", len(got), len(files)+1)
	}
	byName := map[string]zohotest.Attachment{}
	for _, a := range got {
		if _, dup := byName[a.FileName]; dup {
			t.Errorf("%q stored twice", a.FileName)
		}
		byName[a.FileName] = a
	}
	for rel, w := range files {
		a, ok := byName[w.name]
		if !ok {
			t.Errorf("%s: not stored", rel)
			continue
		}
		if a.Module != w.module || a.RecordID != w.record || a.SHA256 != sum(w.body) || a.Size != int64(len(w.body)) {
			t.Errorf("%s: stored %+v, want module %s record %s sha256 %s", rel, a, w.module, w.record, sum(w.body))
		}
		if exists(h.path(rel)) {
			t.Errorf("%s: still in the inbox after upload", rel)
		}
		if !exists(h.path("_uploaded/" + rel)) {
			t.Errorf("%s: not moved to _uploaded/", rel)
		}
	}
	link, ok := byName["website"]
	if !ok || link.Link != "https://www.example.com/acme" || link.RecordID != "1000000231009" {
		t.Errorf("link stored as %+v, want title website, URL https://www.example.com/acme", link)
	}
}

func TestEndToEndRejectsBadInputWithoutAPICalls(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.MaxFileSize = 1 << 20 })
	h.start()
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("the payroll"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"Leads/1000000231009/setup.exe",
		"Leads/1000000231009/SETUP2.EXE",
		"Leads/loose.pdf",
		"Gadgets/1000000231009/a.pdf",
		"Leads/Acme Ltd/a.pdf",
		"Leads/1000000231009/big.bin",
		"Leads/1000000231009/link.txt",
	}
	for _, rel := range bad[:5] {
		h.drop(rel, "content")
	}
	big := h.drop("Leads/1000000231009/big.bin", "x")
	if err := os.Truncate(big, 101<<20); err != nil { // sparse: no 101 MiB written
		t.Fatal(err)
	}
	if err := os.Symlink(outside, h.path("Leads/1000000231009/link.txt")); err != nil {
		t.Fatal(err)
	}
	ignored := []string{"Leads/1000000231009/~$draft.docx", "Leads/1000000231009/scan.tmp", "Leads/1000000231009/Thumbs.db", "Leads/1000000231009/.hidden"}
	for _, rel := range ignored {
		h.drop(rel, "temp")
	}
	waitFor(t, "all rejections", 20*time.Second, func() bool { return h.eventCount("failed") == len(bad) })
	for _, rel := range bad {
		if exists(h.path(rel)) {
			t.Errorf("%s: still in the inbox", rel)
		}
		failed := h.path("_failed/" + rel)
		if !exists(failed) {
			t.Errorf("%s: not in _failed/", rel)
			continue
		}
		reason, err := os.ReadFile(failed + ".error.txt")
		if err != nil {
			t.Errorf("%s: no .error.txt: %v", rel, err)
			continue
		}
		if !strings.Contains(string(reason), "What to do") {
			t.Errorf("%s: .error.txt lacks advice:\n%s", rel, reason)
		}
	}
	if fi, err := os.Lstat(h.path("_failed/Leads/1000000231009/link.txt")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink itself was not moved to _failed/: %v", err)
	}
	if n := len(h.fake.Uploads()); n != 0 {
		t.Errorf("fake stored %d attachments, want 0", n)
	}
	if c := h.fake.Requests(); c.Uploads != 0 {
		t.Errorf("fake saw %d upload requests, want 0", c.Uploads)
	}
	for _, rel := range ignored {
		if !exists(h.path(rel)) {
			t.Errorf("%s: ignored file was moved", rel)
		}
	}
}

func TestEndToEndFileStillBeingWritten(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.Settle = 500 * time.Millisecond })
	h.start()
	p := h.path("Leads/1000000231009/scan.pdf")
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i := range 8 { // a slow scanner: a chunk every 200 ms, slower than events
		chunk := strings.Repeat(string(rune('a'+i)), 4096)
		f.WriteString(chunk)
		body.WriteString(chunk)
		time.Sleep(200 * time.Millisecond)
	}
	f.Close()
	waitFor(t, "the upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
	got := h.fake.Uploads()
	if len(got) != 1 || got[0].SHA256 != sum(body.String()) {
		t.Fatalf("fake stored %+v, want one complete scan.pdf (%d bytes)", got, body.Len())
	}
}

func TestEndToEndPollMode(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Watch = "poll"
		c.RescanInterval = time.Second
	})
	h.start()
	h.drop("Accounts/123/a.txt", "polled")
	waitFor(t, "the upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
	if got := h.fake.Uploads(); len(got) != 1 || got[0].Module != "Accounts" {
		t.Fatalf("fake stored %+v", got)
	}
}

func TestEndToEndAfterUploadModes(t *testing.T) {
	for _, mode := range []string{"delete", "keep"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, nil, func(c *config.Config) { c.AfterUpload = mode })
			h.start()
			p := h.drop("Leads/1/a.txt", "a")
			waitFor(t, "the upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
			if exists(p) != (mode == "keep") {
				t.Errorf("after_upload %s: file exists = %v", mode, exists(p))
			}
			if exists(h.path("_uploaded")) {
				t.Errorf("after_upload %s: _uploaded/ created", mode)
			}
			if mode == "keep" { // a restart must not upload a kept file again
				h.shutdown()
				h.start()
				h.drop("Leads/1/b.txt", "b")
				waitFor(t, "the second upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 2 })
				if n := len(h.fake.Uploads()); n != 2 {
					t.Errorf("fake stored %d, want 2 (kept file not re-uploaded)", n)
				}
			}
		})
	}
}

func TestEndToEndCollisionSafeMoves(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.start()
	for i := range 3 {
		h.drop("Leads/1/report.pdf", strings.Repeat("v", i+1))
		waitFor(t, "upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == i+1 })
	}
	var names []string
	entries, _ := os.ReadDir(h.path("_uploaded/Leads/1"))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	want := []string{"report (2).pdf", "report (3).pdf", "report.pdf"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("_uploaded/Leads/1 = %q, want %q", names, want)
	}
}

func TestEndToEndPermanentAPIError(t *testing.T) {
	fake := zohotest.NewServer(t, zohotest.Options{})
	fake.InvalidRecord("Leads", "999")
	h := newHarness(t, fake, nil)
	h.start()
	h.drop("Leads/999/a.pdf", "a")
	waitFor(t, "failure", 20*time.Second, func() bool { return h.eventCount("failed") == 1 })
	reason, err := os.ReadFile(h.path("_failed/Leads/999/a.pdf.error.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reason), "record id") {
		t.Errorf(".error.txt does not tell staff to check the record id:\n%s", reason)
	}
	// Staff retry by moving the file back; the record is fixed meanwhile.
	fake.ValidRecord("Leads", "999")
	if err := os.Rename(h.path("_failed/Leads/999/a.pdf"), h.path("Leads/999/a.pdf")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retry upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
	if len(fake.Uploads()) != 1 {
		t.Errorf("fake stored %d, want 1", len(fake.Uploads()))
	}
}

func TestEndToEndMissingInboxBlocksThenRecovers(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.RescanInterval = time.Second })
	if err := os.RemoveAll(h.cfg.Inbox); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitFor(t, "blocked on the missing inbox", 20*time.Second, func() bool { return strings.Contains(h.d.Blocked(), "inbox") })
	h.drop("Leads/1/late.txt", "the share came back")
	waitFor(t, "upload after the inbox returned", 30*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
	if b := h.d.Blocked(); b != "" {
		t.Errorf("still blocked after the inbox came back: %q", b)
	}
}

func TestEndToEndSameFileDroppedAgainIsUploadedAgain(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.start()
	p := h.drop("Leads/1/contract.pdf", "v1")
	fi, _ := os.Stat(p)
	waitFor(t, "first upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 })
	// An Explorer copy of the same file: same name, size and modification time.
	h.drop("Leads/1/contract.pdf", "v1")
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second upload", 20*time.Second, func() bool { return h.eventCount("uploaded") == 2 })
	if n := len(h.fake.Uploads()); n != 2 {
		t.Errorf("fake holds %d attachments, want 2 (staff dropped it twice)", n)
	}
	if !exists(h.path("_uploaded/Leads/1/contract (2).pdf")) {
		t.Error("second copy not in _uploaded/ as contract (2).pdf")
	}
}

// A file Zoho refused whose move to _failed/ cannot happen (a file named _failed sits
// where the folder should be) is never sent again: only the move is retried.
func TestUnmovableRefusedFileIsNotSentAgain(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.fake.InvalidRecord("Leads", "1000000231009")
	if err := os.WriteFile(h.path("_failed"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.drop("Leads/1000000231009/scan.pdf", "page one")
	waitFor(t, "the first refusal", 10*time.Second, func() bool { return h.fake.Requests().Rejected >= 1 })
	// Settle is 300 ms: 3 s is ten settle periods, each of which used to send it again.
	time.Sleep(3 * time.Second) // counting calls over time: nothing to wait for
	if got := h.fake.Requests().Uploads; got != 1 {
		t.Errorf("upload requests for one refused file over 3 s = %d, want 1", got)
	}
	if _, err := os.Stat(h.path("Leads/1000000231009/scan.pdf")); err != nil {
		t.Errorf("the file should stay where it is while it cannot be moved: %v", err)
	}
	// Once the obstacle is gone the move happens by itself.
	if err := os.Remove(h.path("_failed")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the move to _failed/", 10*time.Second, func() bool {
		_, err := os.Stat(h.path("_failed/Leads/1000000231009/scan.pdf"))
		return err == nil
	})
	if got := h.fake.Requests().Uploads; got != 1 {
		t.Errorf("upload requests after the move = %d, want 1", got)
	}
}

// The same in after_upload: delete, across a restart, so the entry is read back from
// the ledger: a deleted file is done, and the copy dropped again is a new drop.
func TestDeleteModeSameFileDroppedAgainAfterRestart(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.AfterUpload = "delete" })
	h.start()
	p := h.drop("Leads/1/contract.pdf", "v1")
	fi, _ := os.Stat(p)
	waitFor(t, "first upload and delete", 20*time.Second, func() bool { return h.eventCount("uploaded") == 1 && !exists(p) })
	h.shutdown()
	h.start()
	h.drop("Leads/1/contract.pdf", "v1")
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second upload", 20*time.Second, func() bool { return len(h.fake.Uploads()) == 2 })
}
