package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/inbox"
	"crmdrop/zoho/zohotest"
)

// demoRecords are the record folders a new demo inbox starts with.
var demoRecords = []string{
	"Leads/1000000231009",
	"Contacts/3477061000005177002 Jane Doe",
	"Deals/3477061000007654321 Acme renewal",
}

func cmdDemo(env Env, args []string) int {
	fs := newFlagSet(env, "demo")
	dir := fs.String("dir", "crmdrop-demo", "folder for the demo's inbox and state")
	latency := fs.Duration("latency", 200*time.Millisecond, "the fake CRM's time per upload")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	root, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	fake, err := zohotest.New(zohotest.Options{Latency: *latency})
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: start the fake CRM: %v\n", err)
		return exitFailure
	}
	defer fake.Close()

	cfg := config.Default()
	cfg.Inbox = filepath.Join(root, "inbox")
	cfg.StateDir = filepath.Join(root, "state")
	cfg.Zoho.AccountsURL = fake.URL()
	cfg.Zoho.APIDomain = fake.URL()
	cfg.Zoho.ClientID = zohotest.DefaultClientID
	cfg.Zoho.ClientSecret = zohotest.DefaultClientSecret
	cfg.Zoho.RefreshToken = zohotest.DefaultRefreshToken
	cfg.Settle = time.Second
	cfg.AdminListen = ""
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	if err := seedDemo(cfg.Inbox); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: prepare the demo inbox: %v\n", err)
		return exitFailure
	}
	// The cached token belongs to the previous run's fake, which is gone.
	os.Remove(daemon.TokenCachePath(cfg))

	log, closeLog, err := newLogger(cfg, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	defer closeLog()
	var mu sync.Mutex
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, OnEvent: func(ev daemon.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case "uploaded":
			fmt.Fprintf(env.Stdout, "uploaded  %-40s -> %s %s  attachment %s\n", ev.Path, ev.Module, ev.RecordID, ev.AttachmentID)
		case "failed":
			fmt.Fprintf(env.Stdout, "failed    %-40s -> _failed/ (%s)\n", ev.Path, ev.Reason)
		}
	}})
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	defer d.Close()

	fmt.Fprintf(env.Stdout, "crmdrop demo: a fake Zoho CRM is listening on %s\n", fake.URL())
	fmt.Fprintf(env.Stdout, "Drop files into a record folder, for example:\n")
	for _, r := range demoRecords {
		fmt.Fprintf(env.Stdout, "  %s\n", filepath.Join(cfg.Inbox, filepath.FromSlash(r))+string(filepath.Separator))
	}
	fmt.Fprintf(env.Stdout, "Uploaded files move to %s, refused ones to %s. Ctrl-C stops.\n\n",
		filepath.Join(cfg.Inbox, inbox.UploadedDir), filepath.Join(cfg.Inbox, inbox.FailedDir))

	return runUntilSignal(env, d)
}

// seedDemo creates the record folders and, for a new inbox, a couple of files so the
// first run shows uploads without any typing.
func seedDemo(inboxDir string) error {
	_, err := os.Stat(inboxDir)
	fresh := os.IsNotExist(err)
	for _, r := range demoRecords {
		if err := os.MkdirAll(filepath.Join(inboxDir, filepath.FromSlash(r)), 0o755); err != nil {
			return err
		}
	}
	if !fresh {
		return nil
	}
	files := map[string]string{
		"Leads/1000000231009/welcome.txt":                   "Hello from the crmdrop demo.\n",
		"Contacts/3477061000005177002 Jane Doe/website.url": "[InternetShortcut]\r\nURL=https://www.example.com/\r\n",
	}
	for rel, body := range files {
		if err := os.WriteFile(filepath.Join(inboxDir, filepath.FromSlash(rel)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
