package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kardianos/service"

	"crmdrop/config"
	"crmdrop/daemon"
)

const serviceUsage = "usage: crmdrop service install|uninstall|start|stop|restart|status [-c config.yaml]"

// supportedPlatform reports whether the kardianos/service system named so registers
// what SPEC §4 promises (restart on failure, the absolute config path). Elsewhere, for
// example in a container or on SysV init, crmdrop says so instead of writing an init
// script nothing will run. launchd is there for trying crmdrop on a Mac.
func supportedPlatform(name string) bool {
	switch name {
	case "linux-systemd", "windows-service", "darwin-launchd":
		return true
	}
	return false
}

func cmdService(env Env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stderr, serviceUsage)
			return exitOK
		}
		fmt.Fprintln(env.Stderr, "crmdrop: service needs an action; "+serviceUsage)
		return exitUsage
	}
	action := args[0]
	switch action {
	case "install", "uninstall", "start", "stop", "restart", "status":
	default:
		fmt.Fprintf(env.Stderr, "crmdrop: unknown service action %q; %s\n", action, serviceUsage)
		return exitUsage
	}
	fset, cfgPath := newFlags(env, "service "+action)
	if code, ok := parseFlags(fset, args[1:]); !ok {
		return code
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "crmdrop: unexpected argument %q; %s\n", fset.Arg(0), serviceUsage)
		return exitUsage
	}
	absCfg, err := filepath.Abs(*cfgPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}

	if msg := unsupported(service.ChosenSystem(), absCfg); msg != "" {
		fmt.Fprintf(env.Stderr, "crmdrop: %s\n", msg)
		return exitFailure
	}

	var cfg config.Config
	if action == "install" {
		// Registering a config that cannot load only shows up later, as a service
		// that will not start: check it all now, with the env file it will use.
		var notes envNotes
		var ok bool
		if cfg, notes, ok = loadServiceConfig(env, *cfgPath); !ok {
			return exitUsage
		}
		if notes.exposed != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: warning: %v\n", notes.exposed)
		}
	} else {
		// The other actions need only the name: they work whatever else is in the file.
		svc, err := config.PeekService(*cfgPath)
		if err != nil {
			printLines(env, err)
			return exitUsage
		}
		cfg = config.Default()
		cfg.Service = svc
	}

	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.Abs(exe)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: cannot tell where the crmdrop program is: %v\n", err)
		return exitFailure
	}
	svcCfg := daemon.ServiceConfig(cfg, absCfg, exe)
	s, err := service.New(&daemon.Program{}, svcCfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %s\n", oneLine(err.Error()))
		return exitFailure
	}
	if action == "install" {
		if msg := installProblem(service.Platform(), absCfg, exe); msg != "" {
			fmt.Fprintf(env.Stderr, "crmdrop: %s\n", msg)
			return exitFailure
		}
		if msg := userWarning(cfg.Service.User); msg != "" {
			fmt.Fprintf(env.Stderr, "crmdrop: warning: %s\n", msg)
		}
	}
	return controlService(env, s, action, svcCfg, *cfgPath)
}

// unsupported says why services cannot be managed here, or "".
func unsupported(sys service.System, cfgPath string) string {
	runHint := fmt.Sprintf("run \"crmdrop run -c %s\" under your own supervisor instead", cfgPath)
	if sys == nil {
		return "no service manager found on this machine; " + runHint
	}
	if !supportedPlatform(sys.String()) {
		return fmt.Sprintf("no supported service manager here (found %s): crmdrop service manages a systemd unit on Linux or a Windows service; %s", sys.String(), runHint)
	}
	return ""
}

// installProblem says why the registration would not work as written, or "".
func installProblem(platform, cfgPath, exe string) string {
	if strings.Contains(exe, "go-build") {
		return fmt.Sprintf("crmdrop is running from a temporary build (%s), as with go run; build it (go build) and run service install with that program", exe)
	}
	if platform != "linux-systemd" {
		return ""
	}
	// In a unit file, % starts a specifier, $ a variable and \ an escape inside the
	// quotes kardianos puts around each argument: such a path would run another one.
	for _, p := range []struct{ what, path string }{{"the crmdrop program", exe}, {"the config file", cfgPath}} {
		if strings.ContainsAny(p.path, "%$\\\"\n") {
			return fmt.Sprintf("%s is at %q, whose %%, $, \\ or \" a systemd unit would misread; move it to a plain path", p.what, p.path)
		}
	}
	return ""
}

// userWarning says when service.user names no account this machine knows, or "".
// Only a warning: without cgo, accounts from LDAP or AD are not visible here.
func userWarning(name string) string {
	if name == "" || runtime.GOOS != "linux" {
		return ""
	}
	if _, err := user.Lookup(name); err != nil {
		return fmt.Sprintf("service.user %q is not an account on this machine (%v); create it (e.g. useradd --system %s) before starting the service", name, err, name)
	}
	return ""
}

// controlService performs action on s and prints one line about it.
func controlService(env Env, s service.Service, action string, c *service.Config, cfgArg string) int {
	name := c.Name
	cfgFlag := ""
	if cfgArg != "config.yaml" {
		cfgFlag = " -c " + cfgArg
	}
	if action == "status" {
		st, err := s.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled):
			fmt.Fprintf(env.Stdout, "service %s: not installed\n", name)
		case failedState(err):
			fmt.Fprintf(env.Stdout, "service %s: failed; see %s\n", name, logHint(name))
			return exitFailure
		case err != nil:
			fmt.Fprintf(env.Stderr, "crmdrop: service %s: status unknown: %s\n", name, oneLine(err.Error()))
			return exitFailure
		case st == service.StatusRunning:
			fmt.Fprintf(env.Stdout, "service %s: running\n", name)
		case st == service.StatusStopped:
			fmt.Fprintf(env.Stdout, "service %s: stopped\n", name)
		default:
			fmt.Fprintf(env.Stderr, "crmdrop: service %s: status unknown\n", name)
			return exitFailure
		}
		return exitOK
	}

	st, stErr := s.Status()
	installed := !errors.Is(stErr, service.ErrNotInstalled)
	var err error
	var done string
	switch action {
	case "install":
		if installed && (stErr == nil || failedState(stErr)) {
			fmt.Fprintf(env.Stderr, "crmdrop: service %s is already installed; to change it, run \"crmdrop service uninstall%s\", then install again\n", name, cfgFlag)
			return exitFailure
		}
		err = s.Install()
		done = fmt.Sprintf("installed service %s: %s; start it with \"crmdrop service start%s\"", name, strings.Join(quoteArgs(append([]string{c.Executable}, c.Arguments...)), " "), cfgFlag)
	case "uninstall":
		if !installed {
			fmt.Fprintf(env.Stderr, "crmdrop: service %s is not installed\n", name)
			return exitFailure
		}
		if st == service.StatusRunning {
			// Both managers would leave it running, unmanaged, until the next reboot.
			if err := s.Stop(); err != nil {
				fmt.Fprintf(env.Stderr, "crmdrop: stop service %s: %s\n", name, hint(err))
				return exitFailure
			}
		}
		err = s.Uninstall()
		done = fmt.Sprintf("uninstalled service %s", name)
	case "start", "stop", "restart":
		if !installed {
			fmt.Fprintf(env.Stderr, "crmdrop: service %s is not installed; run \"crmdrop service install%s\" first\n", name, cfgFlag)
			return exitFailure
		}
		err = service.Control(s, action)
		done = map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[action] + " service " + name
		if action != "stop" {
			done += "; its log: " + logHint(name)
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %s service %s: %s\n", action, name, hint(err))
		return exitFailure
	}
	fmt.Fprintln(env.Stdout, done)
	return exitOK
}

// failedState reports kardianos' error for a systemd unit in the "failed" state: it
// is installed, and its last run ended badly.
func failedState(err error) bool { return err != nil && strings.Contains(err.Error(), "failed state") }

// hint is err on one line, with what to do when it is a matter of privileges.
func hint(err error) string {
	msg := oneLine(err.Error())
	lower := strings.ToLower(msg)
	if errors.Is(err, fs.ErrPermission) || strings.Contains(lower, "access denied") ||
		strings.Contains(lower, "access is denied") || strings.Contains(lower, "authentication required") {
		if runtime.GOOS == "windows" {
			return msg + "; run it from an elevated prompt (Run as administrator)"
		}
		return msg + "; run it as root (sudo)"
	}
	return msg
}

func logHint(name string) string {
	switch runtime.GOOS {
	case "windows":
		return "the Event Log (Windows Logs > Application, source " + name + ") or log.file"
	case "linux":
		return "journalctl -u " + name + " (or log.file)"
	}
	return "log.file"
}

// oneLine joins a multi-line message (systemctl's output) into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// quoteArgs quotes the arguments that need it, for display.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = fmt.Sprintf("%q", a)
		}
		out[i] = a
	}
	return out
}
