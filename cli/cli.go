// Package cli implements crmdrop's commands: it parses flags, loads the configuration,
// and hands over to the daemon or to the admin helpers. Each command has a file.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"context"

	"crmdrop/config"
)

// Exit statuses, as SPEC §4 promises to scripts.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Env is what a command may touch besides the file system.
type Env struct {
	Stdout, Stderr io.Writer
	Version        string
}

type command struct {
	name  string
	usage string
	run   func(env Env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "run the daemon in the foreground", cmdRun},
		{"demo", "try crmdrop against a local fake Zoho CRM", cmdDemo},
		{"check", "check the configuration, the folders and the Zoho credentials", cmdCheck},
		{"auth", "exchange a Self Client grant token for a refresh token (--grant-token T)", cmdAuth},
		{"status", "counts, queue, uploads in flight, blocked reason (--json)", cmdStatus},
		{"list", "ledger entries (--state S, --json)", cmdList},
		{"retry", "put failed files back in the queue (--all-failed | PATH...)", cmdRetry},
		{"service", "install|uninstall|start|stop|restart|status the OS service", cmdService},
		{"version", "print version and build info", cmdVersion},
	}
}

// Main runs the command named by args[0] and returns the process exit status.
func Main(args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "crmdrop: unknown command %q; run \"crmdrop help\" for the list\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: crmdrop <command> [-c config.yaml]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.usage)
	}
}

func newFlagSet(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// newFlags returns a flag set with the -c flag every config-reading command takes.
func newFlags(env Env, name string) (*flag.FlagSet, *string) {
	fs := newFlagSet(env, name)
	return fs, fs.String("c", "config.yaml", "path to the configuration file")
}

// parseFlags parses args; ok false means the caller should return code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// loadConfig loads the file and prints every problem; ok false means exit 2.
func loadConfig(env Env, path string) (config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.Stderr, "crmdrop: %s\n", line)
		}
		return cfg, false
	}
	return cfg, true
}

// signalContext ends on SIGINT or SIGTERM, so the daemon stops gracefully.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
