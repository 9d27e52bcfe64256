package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kardianos/service"

	"crmdrop/config"
	"crmdrop/daemon"
)

// svcFake is a service.Service that records the calls made to it.
type svcFake struct {
	status    service.Status
	statusErr error
	actionErr error
	calls     []string
}

func (f *svcFake) call(name string) error { f.calls = append(f.calls, name); return f.actionErr }
func (f *svcFake) Run() error             { return f.call("run") }
func (f *svcFake) Start() error           { return f.call("start") }
func (f *svcFake) Stop() error            { return f.call("stop") }
func (f *svcFake) Restart() error         { return f.call("restart") }
func (f *svcFake) Install() error         { return f.call("install") }
func (f *svcFake) Uninstall() error       { return f.call("uninstall") }
func (f *svcFake) String() string         { return "fake" }
func (f *svcFake) Platform() string       { return "fake" }
func (f *svcFake) Status() (service.Status, error) {
	return f.status, f.statusErr
}
func (f *svcFake) Logger(chan<- error) (service.Logger, error) { return service.ConsoleLogger, nil }
func (f *svcFake) SystemLogger(chan<- error) (service.Logger, error) {
	return service.ConsoleLogger, nil
}

// svcSystem is a service.System with a given name.
type svcSystem string

func (s svcSystem) String() string    { return string(s) }
func (s svcSystem) Detect() bool      { return true }
func (s svcSystem) Interactive() bool { return true }
func (s svcSystem) New(service.Interface, *service.Config) (service.Service, error) {
	return nil, errors.New("not here")
}

func svcEnv() (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return Env{Stdout: &out, Stderr: &errb, Version: "test"}, &out, &errb
}

func TestControlService(t *testing.T) {
	notInstalled := service.ErrNotInstalled
	denied := fmt.Errorf("open /etc/systemd/system/crmdrop.service: %w", fs.ErrPermission)
	tests := []struct {
		name      string
		action    string
		fake      svcFake
		wantCode  int
		wantCalls []string
		wantOut   string // substring of stdout
		wantErr   string // substring of stderr
	}{
		{name: "status running", action: "status", fake: svcFake{status: service.StatusRunning}, wantOut: "service crmdrop: running\n"},
		{name: "status stopped", action: "status", fake: svcFake{status: service.StatusStopped}, wantOut: "service crmdrop: stopped\n"},
		{name: "status not installed", action: "status", fake: svcFake{statusErr: notInstalled}, wantOut: "service crmdrop: not installed\n"},
		{name: "status failed", action: "status", fake: svcFake{statusErr: errors.New("service in failed state")}, wantCode: 1, wantOut: "service crmdrop: failed; see "},
		{name: "status unknown", action: "status", fake: svcFake{statusErr: errors.New("\"systemctl\" failed:\nexit status 4")}, wantCode: 1, wantErr: "status unknown: \"systemctl\" failed: exit status 4\n"},
		{name: "install", action: "install", fake: svcFake{statusErr: notInstalled}, wantCalls: []string{"install"}, wantOut: `installed service crmdrop: /usr/local/bin/crmdrop run -c "/etc/crm drop/config.yaml"; start it with "crmdrop service start -c /etc/crm drop/config.yaml"`},
		{name: "install twice", action: "install", fake: svcFake{status: service.StatusStopped}, wantCode: 1, wantErr: "already installed; to change it, run \"crmdrop service uninstall -c /etc/crm drop/config.yaml\""},
		{name: "install failed unit", action: "install", fake: svcFake{statusErr: errors.New("service in failed state")}, wantCode: 1, wantErr: "already installed"},
		{name: "install denied", action: "install", fake: svcFake{statusErr: notInstalled, actionErr: denied}, wantCode: 1, wantCalls: []string{"install"}, wantErr: "crmdrop: install service crmdrop: open /etc/systemd/system/crmdrop.service: permission denied; run it "},
		{name: "uninstall running", action: "uninstall", fake: svcFake{status: service.StatusRunning}, wantCalls: []string{"stop", "uninstall"}, wantOut: "uninstalled service crmdrop\n"},
		{name: "uninstall stopped", action: "uninstall", fake: svcFake{status: service.StatusStopped}, wantCalls: []string{"uninstall"}, wantOut: "uninstalled service crmdrop\n"},
		{name: "uninstall missing", action: "uninstall", fake: svcFake{statusErr: notInstalled}, wantCode: 1, wantErr: "service crmdrop is not installed\n"},
		{name: "start", action: "start", fake: svcFake{status: service.StatusStopped}, wantCalls: []string{"start"}, wantOut: "started service crmdrop; its log: "},
		{name: "stop", action: "stop", fake: svcFake{status: service.StatusRunning}, wantCalls: []string{"stop"}, wantOut: "stopped service crmdrop\n"},
		{name: "restart", action: "restart", fake: svcFake{status: service.StatusRunning}, wantCalls: []string{"restart"}, wantOut: "restarted service crmdrop"},
		{name: "start not installed", action: "start", fake: svcFake{statusErr: notInstalled}, wantCode: 1, wantErr: "not installed; run \"crmdrop service install -c /etc/crm drop/config.yaml\" first"},
		{name: "start fails", action: "start", fake: svcFake{status: service.StatusStopped, actionErr: errors.New("Job for crmdrop.service failed.\nSee \"systemctl status crmdrop.service\".")}, wantCode: 1, wantCalls: []string{"start"}, wantErr: "Job for crmdrop.service failed. See \"systemctl status crmdrop.service\".\n"},
	}
	c := daemon.ServiceConfig(config.Default(), "/etc/crm drop/config.yaml", "/usr/local/bin/crmdrop")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, out, errb := svcEnv()
			f := tt.fake
			code := controlService(env, &f, tt.action, c, "/etc/crm drop/config.yaml")
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out, errb)
			}
			if !reflect.DeepEqual(f.calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", f.calls, tt.wantCalls)
			}
			if !strings.Contains(out.String(), tt.wantOut) || (tt.wantOut == "" && out.Len() > 0) {
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) || (tt.wantErr == "" && errb.Len() > 0) {
				t.Errorf("stderr %q, want %q", errb, tt.wantErr)
			}
			if n := strings.Count(out.String()+errb.String(), "\n"); n != 1 {
				t.Errorf("printed %d lines, want 1: %q %q", n, out, errb)
			}
		})
	}
}

// TestServiceStatusHere runs `service status` on whatever this machine has: a CI box
// with systemd says "not installed", a container says it has no service manager.
// Either way: one line, no panic.
func TestServiceStatusHere(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("inbox: ${CRMDROP_UNSET_FOR_STATUS}\nservice:\n  name: crmdrop-test-status\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMain(t, "service", "status", "-c", cfgPath)
	all := stdout + stderr
	if strings.Count(all, "\n") != 1 || !strings.HasSuffix(all, "\n") {
		t.Fatalf("service status printed %q, want one line", all)
	}
	if unsupported(service.ChosenSystem(), cfgPath) != "" {
		if code != exitFailure || !strings.Contains(stderr, "crmdrop run -c "+cfgPath) {
			t.Errorf("service status without a service manager: exit %d, %q; want exit 1 and a hint to use crmdrop run", code, stderr)
		}
		return
	}
	if code != exitOK || stdout != "service crmdrop-test-status: not installed\n" {
		t.Errorf("service status: exit %d, %q; want not installed", code, all)
	}
}

func TestServiceUsage(t *testing.T) {
	here := unsupported(service.ChosenSystem(), "") == ""
	for _, tt := range []struct {
		args    []string
		code    int
		want    string
		manager bool // only where a service manager is found (it is checked first)
	}{
		{nil, exitUsage, "service needs an action", false},
		{[]string{"-h"}, exitOK, serviceUsage, false},
		{[]string{"enable"}, exitUsage, `unknown service action "enable"`, false},
		{[]string{"status", "extra"}, exitUsage, `unexpected argument "extra"`, false},
		{[]string{"status", "-x"}, exitUsage, "flag provided but not defined", false},
		{[]string{"status", "-c", filepath.Join(t.TempDir(), "none.yaml")}, exitUsage, "no such file", true},
	} {
		if tt.manager && !here {
			continue
		}
		code, _, stderr := runMain(t, append([]string{"service"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("service %q: exit %d, %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	for _, tt := range []struct {
		sys  service.System
		want string
	}{
		{nil, "no service manager found"},
		{svcSystem("unix-systemv"), "no supported service manager here (found unix-systemv)"},
		{svcSystem("linux-openrc"), "found linux-openrc"},
		{svcSystem("linux-systemd"), ""},
		{svcSystem("windows-service"), ""},
	} {
		got := unsupported(tt.sys, "/etc/crmdrop/config.yaml")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("unsupported(%v) = %q, want %q", tt.sys, got, tt.want)
		}
		if got != "" && !strings.Contains(got, `"crmdrop run -c /etc/crmdrop/config.yaml"`) {
			t.Errorf("unsupported(%v) = %q, want the crmdrop run hint", tt.sys, got)
		}
	}
}

func TestInstallProblem(t *testing.T) {
	for _, tt := range []struct {
		platform, cfgPath, exe string
		bad                    bool
	}{
		{"linux-systemd", "/etc/crmdrop/config.yaml", "/usr/local/bin/crmdrop", false},
		{"linux-systemd", "/etc/crm drop/config.yaml", "/usr/local/bin/crmdrop", false},
		{"linux-systemd", "/etc/100%/config.yaml", "/usr/local/bin/crmdrop", true},
		{"linux-systemd", "/etc/$HOME/config.yaml", "/usr/local/bin/crmdrop", true},
		{"linux-systemd", "/etc/crmdrop/config.yaml", `/opt/a\b/crmdrop`, true},
		{"windows-service", `C:\ProgramData\crmdrop\config.yaml`, `C:\Program Files\crmdrop\crmdrop.exe`, false},
		{"windows-service", `C:\ProgramData\crmdrop\config.yaml`, `C:\Users\a\AppData\Local\Temp\go-build123\b001\exe\crmdrop.exe`, true},
		{"linux-systemd", "/etc/crmdrop/config.yaml", "/tmp/go-build4242/b001/exe/crmdrop", true},
	} {
		got := installProblem(tt.platform, tt.cfgPath, tt.exe)
		if (got != "") != tt.bad {
			t.Errorf("installProblem(%s, %q, %q) = %q, want a problem: %v", tt.platform, tt.cfgPath, tt.exe, got, tt.bad)
		}
	}
}

func TestHint(t *testing.T) {
	want := "; run it as root (sudo)"
	if runtime.GOOS == "windows" {
		want = "; run it from an elevated prompt (Run as administrator)"
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("open x: %w", fs.ErrPermission), "open x: permission denied" + want},
		{errors.New("\"systemctl\" failed with stderr: Failed to enable unit: Access denied\n"), "\"systemctl\" failed with stderr: Failed to enable unit: Access denied" + want},
		{errors.New("Interactive authentication required."), "Interactive authentication required." + want},
		{errors.New("Unit crmdrop.service not found."), "Unit crmdrop.service not found."},
	} {
		if got := hint(tt.err); got != tt.want {
			t.Errorf("hint(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// svcUnsetenv makes k unset for the test and restores it afterwards: LoadEnvFile sets
// variables with os.Setenv.
func svcUnsetenv(t *testing.T, k string) {
	t.Setenv(k, "")
	os.Unsetenv(k)
}

func TestLoadServiceConfig(t *testing.T) {
	const secretVar, tokenVar = "CRMDROP_TEST_SVC_SECRET", "CRMDROP_TEST_SVC_TOKEN"
	setup := func(t *testing.T, envText string, mode os.FileMode) (cfgPath, envPath string) {
		dir := t.TempDir()
		cfgPath = filepath.Join(dir, "config.yaml")
		envPath = filepath.Join(dir, "secrets.env")
		text := "inbox: inbox\nzoho:\n  client_id: id\n  client_secret: ${" + secretVar + "}\n  refresh_token: ${" + tokenVar + "}\nservice:\n  env_file: secrets.env\n"
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if envText != "" {
			if err := os.WriteFile(envPath, []byte(envText), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(envPath, mode); err != nil {
				t.Fatal(err)
			}
		}
		return cfgPath, envPath
	}

	t.Run("secrets from the env file", func(t *testing.T) {
		svcUnsetenv(t, secretVar)
		t.Setenv(tokenVar, "1000.from-the-environment")
		cfgPath, envPath := setup(t, secretVar+"='"+testSecret+"'\n"+tokenVar+"=1000.from-the-file\n", 0o600)
		env, _, errb := svcEnv()
		cfg, notes, ok := loadServiceConfig(env, cfgPath)
		if !ok {
			t.Fatalf("loadServiceConfig failed: %s", errb)
		}
		if cfg.Zoho.ClientSecret != testSecret || cfg.Zoho.RefreshToken != "1000.from-the-environment" {
			t.Errorf("client_secret, refresh_token = %q, %q; want the file's secret and the environment's token", cfg.Zoho.ClientSecret, cfg.Zoho.RefreshToken)
		}
		if notes.path != envPath || notes.exposed != nil || notes.unreadable != nil {
			t.Errorf("notes = %+v, want path %s and nothing to report", notes, envPath)
		}
	})
	t.Run("exposed", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no file modes")
		}
		svcUnsetenv(t, secretVar)
		svcUnsetenv(t, tokenVar)
		cfgPath, _ := setup(t, secretVar+"=x\n"+tokenVar+"=y\n", 0o644)
		env, _, _ := svcEnv()
		_, notes, ok := loadServiceConfig(env, cfgPath)
		if !ok || notes.exposed == nil {
			t.Errorf("loadServiceConfig: ok %v, exposed %v; want a warning for mode 0644", ok, notes.exposed)
		}
		var logs syncBuffer
		log, _, _ := newLogger(config.Config{Log: config.Log{Level: "info", Format: "text"}}, &logs)
		notes.log(log)
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "chmod 600") {
			t.Errorf("logged %q, want a warning with chmod 600", logs.String())
		}
	})
	t.Run("bad env file", func(t *testing.T) {
		svcUnsetenv(t, secretVar)
		svcUnsetenv(t, tokenVar)
		cfgPath, envPath := setup(t, secretVar+"='"+testSecret+"\n", 0o600)
		env, _, errb := svcEnv()
		if _, _, ok := loadServiceConfig(env, cfgPath); ok {
			t.Fatal("loadServiceConfig succeeded with a broken env file")
		}
		if want := "crmdrop: " + envPath + " line 1: the single quote is not closed"; !strings.HasPrefix(errb.String(), want) {
			t.Errorf("stderr %q, want %q", errb, want)
		}
		noSecrets(t, "stderr", errb.String(), testSecret)
	})
	t.Run("missing env file", func(t *testing.T) {
		svcUnsetenv(t, secretVar)
		svcUnsetenv(t, tokenVar)
		cfgPath, _ := setup(t, "", 0)
		env, _, errb := svcEnv()
		if _, _, ok := loadServiceConfig(env, cfgPath); ok {
			t.Fatal("loadServiceConfig succeeded without its env file")
		}
		if !strings.Contains(errb.String(), "no such file") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("stderr %q, want one line saying the env file is missing", errb)
		}
	})
}

func TestServiceLoggerOffWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the Event Log needs a registered source")
	}
	cfg := config.Default()
	cfg.Zoho.ClientSecret = testSecret
	var w syncBuffer
	log, closeLog, err := newServiceLogger(cfg, &w, &svcFake{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("token refreshed", "detail", "secret is "+testSecret)
	if !strings.Contains(w.String(), "token refreshed") || strings.Contains(w.String(), testSecret) {
		t.Errorf("service log %q: want the line on stderr (the journal) with the secret masked", w.String())
	}
}
