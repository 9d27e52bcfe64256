package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/kardianos/service"

	"crmdrop/config"
	"crmdrop/internal/fakeclock"
)

// waitFor fails the test if ch does not deliver within a generous deadline.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// syncBuffer is a log destination the test reads while goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noExit(t *testing.T) func(int) {
	return func(code int) { t.Errorf("Exit(%d) called, want no exit", code) }
}

func TestProgramStartReturnsAtOnceAndStopCancels(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	p := &Program{
		Run: func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			ended <- ctx.Err()
			return ctx.Err()
		},
		Exit: noExit(t),
	}
	if err := p.Start(nil); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	waitFor(t, started, "Run to be called")
	select {
	case <-ended:
		t.Fatal("Run ended before Stop")
	default:
	}
	if err := p.Stop(nil); err != nil {
		t.Errorf("Stop() = %v, want nil after a clean stop", err)
	}
	// Stop has waited: Run's result is already there.
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run's context ended with %v, want context.Canceled", err)
		}
	default:
		t.Error("Stop returned before Run did")
	}
	if err := p.Stop(nil); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

func TestProgramStartDoesNotWaitForRun(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	startReturned := make(chan error, 1)
	p := &Program{
		// Run ignores its context and never returns on its own: Start must not care.
		Run:  func(context.Context) error { <-release; return nil },
		Exit: func(int) {},
	}
	go func() { startReturned <- p.Start(nil) }()
	if err := waitFor(t, startReturned, "Start to return"); err != nil {
		t.Fatalf("Start() = %v", err)
	}
}

func TestProgramStopIsBounded(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	clock := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &Program{
		Run:         func(context.Context) error { <-release; return nil }, // hangs
		StopTimeout: 7 * time.Second,
		Clock:       clock,
		Exit:        noExit(t),
	}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(nil) }()
	if !clock.WaitForWaiters(1, 10*time.Second) {
		t.Fatal("Stop never started its timer")
	}
	clock.Advance(7*time.Second - time.Nanosecond)
	select {
	case err := <-stopped:
		t.Fatalf("Stop() = %v before StopTimeout passed", err)
	default:
	}
	clock.Advance(time.Nanosecond)
	err := waitFor(t, stopped, "Stop to give up")
	if err == nil || !strings.Contains(err.Error(), "did not stop within 7s") {
		t.Errorf("Stop() = %v, want a did-not-stop-within-7s error", err)
	}
}

func TestProgramRunEndsOnItsOwn(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantLog string
	}{
		{"error", errors.New("listen 127.0.0.1:9477: address already in use"), "address already in use"},
		{"nil", nil, "returned without being asked to stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			exited := make(chan int, 1)
			p := &Program{
				Run:    func(context.Context) error { return tt.err },
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Exit:   func(code int) { exited <- code },
			}
			if err := p.Start(nil); err != nil {
				t.Fatal(err)
			}
			if code := waitFor(t, exited, "Exit"); code != 1 {
				t.Errorf("Exit(%d), want Exit(1) so the service manager restarts crmdrop", code)
			}
			out := logs.String()
			if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, tt.wantLog) {
				t.Errorf("log = %q, want an error with %q", out, tt.wantLog)
			}
			if err := p.Stop(nil); err != tt.err {
				t.Errorf("Stop() after Run ended = %v, want Run's error %v", err, tt.err)
			}
		})
	}
}

func TestProgramStopReturnsRunError(t *testing.T) {
	boom := errors.New("close ledger: disk full")
	tests := []struct {
		name string
		ret  func(ctx context.Context) error
		want error
	}{
		{"canceled", func(ctx context.Context) error { return fmt.Errorf("watch: %w", ctx.Err()) }, nil},
		{"nil", func(context.Context) error { return nil }, nil},
		{"failure while stopping", func(context.Context) error { return boom }, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Program{
				Run:  func(ctx context.Context) error { <-ctx.Done(); return tt.ret(ctx) },
				Exit: noExit(t),
			}
			if err := p.Start(nil); err != nil {
				t.Fatal(err)
			}
			if err := p.Stop(nil); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Stop() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProgramMisuse(t *testing.T) {
	if err := (&Program{}).Start(nil); err == nil {
		t.Error("Start() with nil Run = nil, want an error")
	}
	if err := (&Program{}).Stop(nil); err != nil {
		t.Errorf("Stop() before Start = %v, want nil", err)
	}
	p := &Program{Run: func(ctx context.Context) error { <-ctx.Done(); return nil }, Exit: noExit(t)}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(nil); err == nil {
		t.Error("second Start() = nil, want an error")
	}
	if err := p.Stop(nil); err != nil {
		t.Errorf("Stop() = %v", err)
	}
}

func TestServiceConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "conf", "config.yaml")
	cfg := config.Default()
	cfg.Service = config.Service{Name: "crmdrop-eu", DisplayName: "crmdrop (EU)", Description: "EU office\ninbox", User: "svc-crmdrop", EnvFile: "/etc/crmdrop/crmdrop.env"}
	exe := filepath.Join(dir, "bin", "crmdrop")

	c := ServiceConfig(cfg, cfgPath, exe)
	if want := []string{"run", "-c", cfgPath}; !reflect.DeepEqual(c.Arguments, want) {
		t.Errorf("Arguments = %q, want %q", c.Arguments, want)
	}
	if c.Name != "crmdrop-eu" || c.DisplayName != "crmdrop (EU)" || c.UserName != "svc-crmdrop" || c.Executable != exe {
		t.Errorf("Name, DisplayName, UserName, Executable = %q, %q, %q, %q", c.Name, c.DisplayName, c.UserName, c.Executable)
	}
	if c.Description != "EU office inbox" {
		t.Errorf("Description = %q, want it on one line", c.Description)
	}
	if len(c.Dependencies) != 0 {
		// On Windows these are service names: a systemd line there breaks the install.
		t.Errorf("Dependencies = %q, want none", c.Dependencies)
	}
	for key, want := range map[string]any{
		"Restart":                "always",
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400, // an int: kardianos ignores any other type
		"StartType":              "automatic",
		"DelayedAutoStart":       true,
	} {
		if got := c.Option[key]; got != want {
			t.Errorf("Option[%q] = %#v, want %#v", key, got, want)
		}
	}
	if d, err := time.ParseDuration(c.Option["OnFailureDelayDuration"].(string)); err != nil || d != 5*time.Second {
		t.Errorf("OnFailureDelayDuration parses as %v, %v; want 5s", d, err)
	}
	if s, _ := c.Option["SystemdScript"].(string); !strings.Contains(s, "EnvironmentFile=-/etc/crmdrop/crmdrop.env\n") {
		t.Errorf("SystemdScript = %q, want the env file in it", s)
	}

	t.Run("relative config path", func(t *testing.T) {
		t.Chdir(dir)
		c := ServiceConfig(cfg, filepath.Join("conf", "config.yaml"), exe)
		if c.Arguments[2] != cfgPath {
			t.Errorf("Arguments[2] = %q, want the absolute %q", c.Arguments[2], cfgPath)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		c := ServiceConfig(config.Config{}, cfgPath, exe)
		if c.Name != "crmdrop" || c.DisplayName != "crmdrop" || c.Description == "" || c.UserName != "" {
			t.Errorf("Name, DisplayName, Description, UserName = %q, %q, %q, %q; want crmdrop, crmdrop, a default, empty", c.Name, c.DisplayName, c.Description, c.UserName)
		}
	})
}

// systemdData is what kardianos/service v1.3.0's systemd Install passes to the unit
// template (service_systemd_linux.go), for a system service on systemd >= 236.
func systemdData(c *service.Config) map[string]any {
	opt := func(k, def string) string {
		if s, ok := c.Option[k].(string); ok {
			return s
		}
		return def
	}
	output := ""
	if b, _ := c.Option["LogOutput"].(bool); b {
		output = "yes"
	}
	limit := ""
	if n, ok := c.Option["LimitNOFILE"].(int); ok && n > -1 {
		limit = fmt.Sprint(n)
	}
	var env []string
	for k, v := range c.EnvVars {
		env = append(env, "Environment="+k+"="+v)
	}
	return map[string]any{
		"Description":       c.Description,
		"Path":              c.Executable,
		"Name":              c.Name,
		"Dependencies":      c.Dependencies,
		"Arguments":         c.Arguments,
		"ChRoot":            c.ChRoot,
		"WorkingDirectory":  c.WorkingDirectory,
		"UserName":          c.UserName,
		"ReloadSignal":      opt("ReloadSignal", ""),
		"PIDFile":           opt("PIDFile", ""),
		"LogDirectory":      opt("LogDirectory", "/var/log"),
		"OutputFileSupport": output,
		"LimitNOFILE":       limit,
		"Restart":           opt("Restart", "always"),
		"SuccessExitStatus": opt("SuccessExitStatus", ""),
		"EnvVars":           env,
	}
}

// kardianos' template functions (service_linux.go).
var systemdFuncs = map[string]func(string) string{
	"cmd":       func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
	"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
}

// renderUnit renders c's SystemdScript with text/template. kardianos' engine reads
// {{Key}} as a data key; here each key becomes a function returning its value, which
// gives text/template the same meaning for the subset TestSystemdUnitSyntax allows.
func renderUnit(t *testing.T, c *service.Config) string {
	t.Helper()
	funcs := template.FuncMap{}
	for k, v := range systemdData(c) {
		funcs[k] = func() any { return v }
	}
	for k, f := range systemdFuncs {
		funcs[k] = f
	}
	script, _ := c.Option["SystemdScript"].(string)
	tmpl, err := template.New("unit").Funcs(funcs).Parse(script)
	if err != nil {
		t.Fatalf("parse unit template: %v", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		t.Fatalf("render unit: %v", err)
	}
	return b.String()
}

func TestSystemdUnit(t *testing.T) {
	cfg := config.Default()
	cfg.Service.User = "crmdrop"
	cfg.Service.EnvFile = "/etc/crmdrop/crmdrop.env"
	unit := renderUnit(t, ServiceConfig(cfg, "/etc/crmdrop/my config.yaml", "/usr/local/bin/crmdrop"))
	for _, want := range []string{
		"\nWants=network-online.target\n",
		"\nAfter=network-online.target\n",
		"\nExecStart=/usr/local/bin/crmdrop \"run\" \"-c\" \"/etc/crmdrop/my config.yaml\"\n",
		"\nUser=crmdrop\n",
		"\nRestart=always\n",
		"\nRestartSec=5s\n",
		"\nRestartPreventExitStatus=2\n",
		"\nEnvironmentFile=-/etc/crmdrop/crmdrop.env\n",
		"\n[Install]\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit does not contain %q:\n%s", want, unit)
		}
	}
	for _, bad := range []string{"RestartSec=120", "StandardError=file:", "/etc/sysconfig/"} {
		if strings.Contains(unit, bad) {
			t.Errorf("unit contains %q:\n%s", bad, unit)
		}
	}
	// Every [Service] key the unit sets, once.
	seen := map[string]bool{}
	for _, line := range strings.Split(unit, "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && seen[k] && k != "Environment" {
			t.Errorf("unit sets %s twice:\n%s", k, unit)
		}
		seen[k] = true
	}

	t.Run("env file", func(t *testing.T) {
		for _, tt := range []struct{ envFile, want string }{
			{"", ""},
			{"/etc/crmdrop/100%.env", "EnvironmentFile=-/etc/crmdrop/100%%.env\n"},
			{"/etc/{{odd}}.env", ""},
		} {
			c := cfg
			c.Service.EnvFile = tt.envFile
			unit := renderUnit(t, ServiceConfig(c, "/etc/crmdrop/config.yaml", "/usr/local/bin/crmdrop"))
			got := ""
			if i := strings.Index(unit, "EnvironmentFile="); i >= 0 {
				got = unit[i : i+strings.IndexByte(unit[i:], '\n')+1]
			}
			if got != tt.want {
				t.Errorf("env_file %q: unit has %q, want %q", tt.envFile, got, tt.want)
			}
		}
	})
	t.Run("no user", func(t *testing.T) {
		unit := renderUnit(t, ServiceConfig(config.Default(), "/etc/crmdrop/config.yaml", "/usr/local/bin/crmdrop"))
		if strings.Contains(unit, "User=") {
			t.Errorf("unit without service.user sets User=:\n%s", unit)
		}
	})
}

// TestSystemdUnitSyntax keeps the unit template inside what kardianos' own engine
// understands: no .Field, no text/template functions, only the keys its systemd
// Install passes and the functions cmd and cmdEscape.
func TestSystemdUnitSyntax(t *testing.T) {
	keys := systemdData(&service.Config{})
	script := systemdUnit("/etc/crmdrop/crmdrop.env")
	actions := regexp.MustCompile(`{{-?\s*(.*?)\s*-?}}`).FindAllStringSubmatch(script, -1)
	if len(actions) < 10 {
		t.Fatalf("found %d template actions, want the unit's", len(actions))
	}
	depth := 0
	for _, m := range actions {
		a := m[1]
		word, rest, _ := strings.Cut(a, " ")
		switch word {
		case "end":
			depth--
			continue
		case "else":
			continue
		case "if", "range":
			depth++
			a = strings.TrimSpace(rest)
		}
		parts := strings.Split(a, "|")
		key := strings.TrimSpace(parts[0])
		if _, ok := keys[key]; !ok && key != "." {
			t.Errorf("action {{%s}}: %q is not a key kardianos passes", m[1], key)
		}
		for _, f := range parts[1:] {
			if _, ok := systemdFuncs[strings.TrimSpace(f)]; !ok {
				t.Errorf("action {{%s}}: %q is not a kardianos template function", m[1], f)
			}
		}
	}
	if depth != 0 {
		t.Errorf("unbalanced if/range/end: depth %d", depth)
	}
}

// fakeSysLog is a service.Logger that records what it is given.
type fakeSysLog struct {
	mu    sync.Mutex
	lines []string // "I: msg", "W: msg", "E: msg"
}

func (f *fakeSysLog) add(level string, v []any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, level+": "+fmt.Sprint(v...))
	return nil
}
func (f *fakeSysLog) Error(v ...any) error   { return f.add("E", v) }
func (f *fakeSysLog) Warning(v ...any) error { return f.add("W", v) }
func (f *fakeSysLog) Info(v ...any) error    { return f.add("I", v) }
func (f *fakeSysLog) Errorf(format string, a ...any) error {
	return f.add("E", []any{fmt.Sprintf(format, a...)})
}
func (f *fakeSysLog) Warningf(format string, a ...any) error {
	return f.add("W", []any{fmt.Sprintf(format, a...)})
}
func (f *fakeSysLog) Infof(format string, a ...any) error {
	return f.add("I", []any{fmt.Sprintf(format, a...)})
}

func TestLogHandler(t *testing.T) {
	sl := &fakeSysLog{}
	log := slog.New(NewLogHandler(sl, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("scan done", "files", 3)
	log.Info("crmdrop started", "inbox", `\\server\share\inbox`)
	log.With("path", "Leads/1/a.pdf").WithGroup("zoho").Warn("upload failed, will retry", "code", "INTERNAL_ERROR")
	log.Error("ledger", "err", errors.New("disk full"))
	log.Log(context.Background(), slog.LevelError+4, "worse")
	want := []string{
		`I: msg="scan done" files=3`,
		`I: msg="crmdrop started" inbox=\\server\share\inbox`,
		`W: msg="upload failed, will retry" path=Leads/1/a.pdf zoho.code=INTERNAL_ERROR`,
		`E: msg=ledger err="disk full"`,
		`E: msg=worse`,
	}
	if !reflect.DeepEqual(sl.lines, want) {
		t.Errorf("system log got\n%q\nwant\n%q", sl.lines, want)
	}

	t.Run("level", func(t *testing.T) {
		sl := &fakeSysLog{}
		log := slog.New(NewLogHandler(sl, nil))
		log.Debug("hidden")
		log.Info("shown")
		if want := []string{"I: msg=shown"}; !reflect.DeepEqual(sl.lines, want) {
			t.Errorf("system log = %q, want %q (debug off by default)", sl.lines, want)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		sl := &fakeSysLog{}
		log := slog.New(NewLogHandler(sl, nil))
		var wg sync.WaitGroup
		for i := range 8 {
			l := log.With("worker", i)
			wg.Go(func() {
				for j := range 50 {
					l.Info("tick", "n", j)
				}
			})
		}
		wg.Wait()
		if len(sl.lines) != 400 {
			t.Fatalf("got %d lines, want 400", len(sl.lines))
		}
		line := regexp.MustCompile(`^I: msg=tick worker=\d n=\d+$`)
		for _, l := range sl.lines {
			if !line.MatchString(l) {
				t.Fatalf("garbled line %q", l)
			}
		}
	})
}
