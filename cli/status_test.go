package cli

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"crmdrop/admin"
	"crmdrop/daemon"
	"crmdrop/store"
	"crmdrop/zoho/zohotest"
)

var t0 = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

// ledgerEntriesFixture is a ledger with an entry in every state, failures at
// different times.
func ledgerEntriesFixture() []store.Entry {
	return []store.Entry{
		{Path: "Leads/1000000231009/a.pdf", Size: 10, ModTime: t0, Module: "Leads", RecordID: "1000000231009", State: store.Uploaded, Attempts: 1, AttachmentID: "3477061000010000001", MovedTo: "_uploaded/Leads/1000000231009/a.pdf", Updated: t0},
		{Path: "Leads/1000000231009/b.pdf", Size: 20, ModTime: t0, Module: "Leads", RecordID: "1000000231009", State: store.Pending, Updated: t0},
		{Path: "Leads/1000000231009/c.pdf", Size: 30, ModTime: t0, Module: "Leads", RecordID: "1000000231009", State: store.Uploading, Attempts: 2, AttemptStart: t0, Updated: t0},
		{Path: "Leads/setup.exe", Size: 40, ModTime: t0, State: store.Failed, LastError: "the file is not inside a record folder", Updated: t0.Add(time.Minute)},
		{Path: "Deals/1/x.exe", Size: 50, ModTime: t0, Module: "Deals", RecordID: "1", State: store.Failed, LastError: "Zoho CRM does not accept programs\t(.exe files)", Updated: t0.Add(2 * time.Minute)},
	}
}

func (s *setup) writeLedger(entries []store.Entry) {
	s.t.Helper()
	led, err := store.Open(filepath.Join(s.state, "ledger.db"), store.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer led.Close()
	if err := led.PutAll(entries); err != nil {
		s.t.Fatal(err)
	}
}

func TestStatusFromLedger(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	s.writeLedger(ledgerEntriesFixture())

	code, out, errOut := s.run("status", "--json")
	if code != exitOK || errOut != "" {
		t.Fatalf("status --json = exit %d, stderr %q", code, errOut)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("status --json is not a JSON object: %v", err)
	}
	for _, k := range []string{"state", "blocked_reason", "counts", "queue", "in_flight", "recent_failures"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status --json lacks the SPEC key %q", k)
		}
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	wantCounts := map[string]int{"pending": 1, "uploading": 1, "uploaded": 1, "failed": 2}
	if st.State != "stopped" || st.Source != "ledger" || !maps.Equal(st.Counts, wantCounts) || st.Queue != 1 || st.Inbox != s.inbox {
		t.Errorf("status = %+v, want stopped, from the ledger, counts %v, queue 1", st, wantCounts)
	}
	if string(raw["in_flight"]) != "[]" {
		t.Errorf("in_flight = %s, want [] (nothing runs)", raw["in_flight"])
	}
	if len(st.RecentFailures) != 2 || st.RecentFailures[0].Path != "Deals/1/x.exe" || st.RecentFailures[1].Path != "Leads/setup.exe" {
		t.Errorf("recent_failures = %+v, want the two failures, newest first", st.RecentFailures)
	}

	code, out, _ = s.run("status")
	if code != exitOK {
		t.Fatalf("status = exit %d", code)
	}
	text := squash(out) // the columns' widths are admin.WriteText's business
	for _, want := range []string{
		"state: stopped",
		"counts: pending 1, uploading 1, uploaded 1, failed 2",
		"source: ledger (the daemon is not running)",
		"2026-03-04 09:02:00 Deals/1/x.exe Zoho CRM does not accept programs (.exe files)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q", want)
		}
	}
}

func TestStatusProblems(t *testing.T) {
	t.Run("no ledger", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{})
		code, out, errOut := s.run("status")
		want := "crmdrop: no ledger at " + filepath.Join(s.state, "ledger.db") + " (no daemon answers at " + s.admin + "): crmdrop has not run with this state_dir yet"
		if code != exitFailure || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("status = exit %d, stderr %q; want 1 and one line %q…", code, errOut, want)
		}
	})
	t.Run("ledger held, no daemon answers", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{})
		led, err := store.Open(daemon.LedgerPath(s.config()), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer led.Close()
		code, _, errOut := s.run("status")
		want := "crmdrop: the ledger " + filepath.Join(s.state, "ledger.db") + " is in use by another process, but no crmdrop daemon answers at " + s.admin
		if code != exitFailure || !strings.HasPrefix(errOut, want) {
			t.Errorf("status = exit %d, stderr %q; want 1 and %q…", code, errOut, want)
		}
	})
	t.Run("ledger held, admin endpoint off", func(t *testing.T) {
		s := newSetup(t, nil, cfgOpts{adminListen: "-"})
		led, err := store.Open(daemon.LedgerPath(s.config()), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer led.Close()
		code, _, errOut := s.run("status", "--json")
		if code != exitFailure || !strings.Contains(errOut, "admin_listen is empty, so the daemon cannot be asked; set admin_listen") {
			t.Errorf("status = exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("secrets set nowhere", func(t *testing.T) {
		// An admin's shell rarely has the service's secrets; status does not need them.
		s := newSetup(t, nil, cfgOpts{secret: "${CRMDROP_TEST_NEVER_SET_4F2A}", refresh: "${CRMDROP_TEST_NEVER_SET_4F2A}"})
		s.writeLedger(ledgerEntriesFixture()[:1])
		if code, out, _ := s.run("status"); code != exitOK || !strings.Contains(out, "uploaded 1") {
			t.Errorf("status = exit %d, want 0 with the counts", code)
		}
	})
}

func TestStatusFromDaemon(t *testing.T) {
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{})
	s.startDaemon(testLog{t})
	s.write("Leads/"+testRecord+"/contract.pdf", "%PDF-1.4 hello")
	waitFor(t, "the upload", func() bool { return len(fake.Uploads()) == 1 })

	waitFor(t, "the ledger to record it", func() bool {
		st, err := admin.Fetch(t.Context(), s.admin)
		return err == nil && st.Counts["uploaded"] == 1
	})
	code, out, _ := s.run("status", "--json")
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); code != exitOK || err != nil {
		t.Fatalf("status --json = exit %d, %v", code, err)
	}
	if st.State != "running" || st.Source != "daemon" || st.Counts["uploaded"] != 1 || st.Version != "test" {
		t.Errorf("status = %+v, want running, from the daemon, 1 uploaded", st)
	}
	code, out, _ = s.run("status")
	if text := squash(out); code != exitOK || !strings.Contains(text, "state: running") || !strings.Contains(text, "source: daemon") {
		t.Errorf("status = exit %d, text %q", code, out)
	}
}

func TestListFromLedger(t *testing.T) {
	s := newSetup(t, nil, cfgOpts{})
	s.writeLedger(ledgerEntriesFixture())

	code, out, _ := s.run("list", "--json")
	if code != exitOK {
		t.Fatalf("list --json = exit %d", code)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("list --json is not a JSON array of objects: %v", err)
	}
	if len(raw) != 5 {
		t.Fatalf("list --json has %d entries, want 5", len(raw))
	}
	// The uploaded entry has every key; omitempty ones are left out elsewhere.
	want := []string{"attachment_id", "attempts", "module", "moved_to", "mtime", "path", "record_id", "size", "state", "updated"}
	if got := slices.Sorted(maps.Keys(raw[1])); raw[1]["path"] == nil || !slices.Equal(got, want) {
		t.Errorf("list --json keys of %s = %q, want %q", raw[1]["path"], got, want)
	}
	var entries []admin.Entry
	json.Unmarshal([]byte(out), &entries)
	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = e.Path
	}
	wantPaths := []string{"Deals/1/x.exe", "Leads/1000000231009/a.pdf", "Leads/1000000231009/b.pdf", "Leads/1000000231009/c.pdf", "Leads/setup.exe"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("list --json paths = %q, want %q", paths, wantPaths)
	}

	code, out, _ = s.run("list", "--state", "failed")
	if code != exitOK {
		t.Fatalf("list --state failed = exit %d", code)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "STATE") || !strings.Contains(rows[1], "Deals/1/x.exe") ||
		!strings.Contains(rows[1], "Zoho CRM does not accept programs (.exe files)") || !strings.HasPrefix(rows[2], "failed") {
		t.Errorf("list --state failed =\n%s", out)
	}
	code, out, _ = s.run("list", "--state", "uploaded")
	if code != exitOK || !strings.Contains(out, "Leads 1000000231009") || !strings.Contains(out, "attachment 3477061000010000001") {
		t.Errorf("list --state uploaded = exit %d\n%s", code, out)
	}
	if code, out, _ := s.run("list", "--limit", "2", "--json"); code != exitOK || strings.Count(out, `"path"`) != 2 {
		t.Errorf("list --limit 2 = exit %d\n%s", code, out)
	}

	empty := newSetup(t, nil, cfgOpts{})
	empty.writeLedger(nil)
	if code, out, _ := empty.run("list", "--json"); code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json on an empty ledger = exit %d, %q, want []", code, out)
	}
	if code, out, _ := empty.run("list", "--state", "failed"); code != exitOK || out != "no failed entries\n" {
		t.Errorf("list on an empty ledger = exit %d, %q", code, out)
	}
}

func TestListFromDaemon(t *testing.T) {
	fake := newFake(t, zohotest.Options{})
	s := newSetup(t, fake, cfgOpts{})
	s.startDaemon(testLog{t})
	s.write("Leads/"+testRecord+"/contract.pdf", "%PDF-1.4 hello")
	s.write("Leads/setup.exe", "MZ")
	waitFor(t, "both files to end", func() bool {
		st, err := admin.Fetch(t.Context(), s.admin)
		return err == nil && st.Counts["uploaded"] == 1 && st.Counts["failed"] == 1
	})
	// The daemon holds the ledger: this can only come from /api/entries.
	code, out, errOut := s.run("list", "--json")
	var entries []admin.Entry
	if err := json.Unmarshal([]byte(out), &entries); code != exitOK || err != nil {
		t.Fatalf("list --json = exit %d (%v), stderr %q", code, err, errOut)
	}
	states := map[string]string{}
	for _, e := range entries {
		states[e.Path] = e.State
	}
	want := map[string]string{"Leads/" + testRecord + "/contract.pdf": "uploaded", "Leads/setup.exe": "failed"}
	if !maps.Equal(states, want) {
		t.Errorf("list --json states = %v, want %v", states, want)
	}
	code, out, _ = s.run("list", "--state", "failed")
	if code != exitOK || !strings.Contains(out, "Leads/setup.exe") || strings.Contains(out, "contract.pdf") {
		t.Errorf("list --state failed = exit %d\n%s", code, out)
	}
}

func TestAdminConfigEnvFile(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "crmdrop.env")
	if err := os.WriteFile(env, []byte("CRMDROP_T_INBOX="+filepath.Join(dir, "in")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	text := "inbox: ${CRMDROP_T_INBOX}\nstate_dir: st\nzoho:\n  client_secret: ${CRMDROP_TEST_NEVER_SET_4F2A}\nservice:\n  env_file: crmdrop.env\nlog:\n  file: logs/crmdrop.log\n"
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	lc, ok := adminConfig(Env{Stderr: &stderr}, cfgPath, credsOptional)
	if !ok {
		t.Fatalf("adminConfig: %s", stderr.String())
	}
	c := lc.cfg
	if c.Inbox != filepath.Join(dir, "in") || c.StateDir != filepath.Join(dir, "st") || c.Service.EnvFile != env || c.Log.File != filepath.Join(dir, "logs", "crmdrop.log") {
		t.Errorf("paths = %q %q %q %q", c.Inbox, c.StateDir, c.Service.EnvFile, c.Log.File)
	}
	if c.Zoho.ClientSecret != "" || !slices.Equal(lc.unresolved, []string{"zoho.client_secret"}) {
		t.Errorf("client_secret = %q, unresolved %q; want \"\" and named", c.Zoho.ClientSecret, lc.unresolved)
	}

	// The same unset variable in a key that is needed is the config's error, with its line.
	text = strings.Replace(text, "state_dir: st", "state_dir: ${CRMDROP_TEST_NEVER_SET_4F2A}", 1)
	os.WriteFile(cfgPath, []byte(text), 0o600)
	stderr.Reset()
	if _, ok := adminConfig(Env{Stderr: &stderr}, cfgPath, credsOptional); ok ||
		!strings.Contains(stderr.String(), cfgPath+" line 2: state_dir: environment variable CRMDROP_TEST_NEVER_SET_4F2A is not set") {
		t.Errorf("adminConfig with an unset state_dir = %v, stderr %q", ok, stderr.String())
	}
	if strings.Contains(stderr.String(), unsetVar) {
		t.Errorf("the stand-in leaked into an error: %q", stderr.String())
	}
}
