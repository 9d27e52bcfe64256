package cli

import (
	"fmt"

	"crmdrop/daemon"
)

func cmdRun(env Env, args []string) int {
	fs, cfgPath := newFlags(env, "run")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(env, *cfgPath)
	if !ok {
		return exitUsage
	}
	if err := cfg.RequireCredentials(); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitUsage
	}
	log, closeLog, err := newLogger(cfg, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitUsage
	}
	defer closeLog()
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log})
	if err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	defer d.Close()
	ctx, stop := signalContext()
	defer stop()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "crmdrop: %v\n", err)
		return exitFailure
	}
	return exitOK
}
