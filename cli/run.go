package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kardianos/service"

	"crmdrop/config"
	"crmdrop/daemon"
)

func cmdRun(env Env, args []string) int {
	managed := !service.Interactive()
	var early bytes.Buffer
	if managed && runtime.GOOS == "windows" {
		// A Windows service has no stderr: what would be printed there before the
		// logger exists (a config error) goes to the Event Log as well. The buffer
		// comes first: MultiWriter stops at the first writer that fails.
		env.Stderr = io.MultiWriter(&early, env.Stderr)
	}
	fs, cfgPath := newFlags(env, "run")
	code := runDaemon(env, fs, cfgPath, args, managed)
	if code != exitOK && early.Len() > 0 {
		reportToSystemLog(*cfgPath, early.String())
	}
	return code
}

// runDaemon is `crmdrop run` once its flag set is built; managed says a service
// manager started this process.
func runDaemon(env Env, fs *flag.FlagSet, cfgPath *string, args []string, managed bool) int {
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, notes, ok := loadServiceConfig(env, *cfgPath)
	if !ok {
		return exitUsage
	}
	if err := cfg.RequireCredentials(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.Stderr, "crmdrop: %s\n", line)
		}
		return exitUsage
	}
	if managed {
		if code, ok := runManaged(env, cfg, *cfgPath, notes); ok {
			return code
		}
	}
	log, closeLog, err := newLogger(cfg, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitUsage
	}
	defer closeLog()
	notes.log(log)
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, Version: env.Version})
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	defer d.Close()
	return runUntilSignal(env, d)
}

// runUntilSignal runs the daemon in the foreground until SIGINT or SIGTERM.
func runUntilSignal(env Env, d *daemon.Daemon) int {
	ctx, stop := signalContext()
	defer stop()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// runManaged runs the daemon under the service manager that started this process,
// through kardianos/service: it reports the service started at once and stops it
// when asked (daemon.Program). ok is false when no service system can host it; the
// caller then runs as from a terminal.
func runManaged(env Env, cfg config.Config, cfgPath string, notes envNotes) (code int, ok bool) {
	exe, _ := os.Executable() // only registration uses it; Run does not
	prog := &daemon.Program{}
	s, err := service.New(prog, daemon.ServiceConfig(cfg, cfgPath, exe))
	if err != nil {
		return 0, false
	}
	log, closeLog, err := newServiceLogger(cfg, env.Stderr, s)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure, true
	}
	defer closeLog()
	notes.log(log)
	prog.Logger = log
	prog.Run = func(ctx context.Context) error {
		// Opening the ledger waits up to a second for another crmdrop's lock: that
		// happens here, after Start has returned, not before.
		d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, Version: env.Version})
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Run(ctx)
	}
	if err := s.Run(); err != nil {
		log.Error("service stopped with an error", "err", err)
		return exitFailure, true
	}
	return exitOK, true
}

// envNotes are things about the env file worth logging once the logger exists.
type envNotes struct {
	config     error // the config file holds secrets others may read
	path       string
	unreadable error // this account may not read it (systemd read it as root)
	exposed    error // others may read it
}

func (n envNotes) log(log *slog.Logger) {
	if n.config != nil {
		log.Warn("config file readable by other users", "problem", n.config)
	}
	if n.unreadable != nil {
		log.Info("env file not readable by this account; using the environment the service manager set", "path", n.path, "err", n.unreadable)
	}
	if n.exposed != nil {
		log.Warn("env file readable by other users", "path", n.path, "problem", n.exposed)
	}
}

// loadServiceConfig loads the config the way the service needs it: first the env
// file that service.env_file names, into the process environment (variables already
// set win), then the config with its ${VAR}s. It prints every problem and returns ok
// false (exit 2) on failure. An env file this account may not read is not fatal: the
// service manager may have read it already (systemd's EnvironmentFile= as root); if
// it has not, the config's unset variables are reported, after the permission error.
func loadServiceConfig(env Env, path string) (config.Config, envNotes, bool) {
	var notes envNotes
	ef, err := config.EnvFile(path)
	if err != nil {
		printLines(env, err)
		return config.Config{}, notes, false
	}
	if ef != "" {
		notes.path = ef
		err := config.LoadEnvFile(ef, os.Setenv, os.LookupEnv)
		switch {
		case errors.Is(err, fs.ErrPermission):
			notes.unreadable = err
		case err != nil:
			printLines(env, fmt.Errorf("%w; fix it or clear service.env_file in %s", err, filepath.Base(path)))
			return config.Config{}, notes, false
		default:
			notes.exposed = config.CheckEnvFilePerm(ef)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		if notes.unreadable != nil {
			fmt.Fprintf(env.Stderr, "crmdrop: %v; run crmdrop as an account that may read it\n", notes.unreadable)
		}
		printLines(env, err)
		return cfg, notes, false
	}
	notes.config = config.CheckConfigPerm(path, cfg)
	return cfg, notes, true
}

// printLines prints each line of err as "crmdrop: line".
func printLines(env Env, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(env.Stderr, "crmdrop: %s\n", line)
	}
}

// reportToSystemLog writes text, line by line, as errors to the system log under the
// service's name (best effort: this is the last word of a service that is exiting).
func reportToSystemLog(cfgPath, text string) {
	svc, _ := config.PeekService(cfgPath) // its Name is the default even on error
	s, err := service.New(&daemon.Program{}, &service.Config{Name: svc.Name})
	if err != nil {
		return
	}
	sl, err := s.SystemLogger(nil)
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		sl.Error(line)
	}
}
