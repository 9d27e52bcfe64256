package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kardianos/service"

	"crmdrop/config"
)

// DefaultStopTimeout bounds Program.Stop when Program.StopTimeout is zero. Windows
// gives a service 20 s at shutdown (WaitToKillServiceTimeout) and the unit below
// gives 30 s (TimeoutStopSec), so a stop that hangs is reported before the service
// manager kills the process.
const DefaultStopTimeout = 20 * time.Second

// Program runs crmdrop under an OS service manager (kardianos/service): it
// implements service.Interface. The zero value is not usable: set Run.
//
// Start returns at once and calls Run in a goroutine with a context of its own, so
// the service manager sees the service started before the slow work (opening the
// ledger, the first scan, the first token). Stop cancels that context and waits for
// Run to return, at most StopTimeout. If Run returns before Stop was called (the
// admin port is taken, the state folder cannot be written), the error is logged and
// Exit(1) ends the process: a process that exits with a failure is what both
// service managers restart (systemd's Restart=always; the Windows
// recovery action, which only reacts to a process that ends without reporting itself
// stopped, so Start cannot just return the error later).
//
// Start and Stop are safe for concurrent use; a Program runs once.
type Program struct {
	// Run is the service's work; it must return soon after ctx is canceled.
	Run func(ctx context.Context) error
	// StopTimeout bounds how long Stop waits for Run; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// Logger receives the unexpected end of Run; nil discards.
	Logger *slog.Logger
	// Exit ends the process after Run returned on its own; nil means os.Exit.
	Exit func(code int)
	// Clock times the stop bound; nil means the real clock.
	Clock Clock

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{} // closed when Run has returned
	err      error         // Run's result, once done is closed
	stopping bool
}

var _ service.Interface = (*Program)(nil)

// Start starts Run in a goroutine and returns without waiting for it. It fails if
// Run is nil or the Program was started before.
func (p *Program) Start(service.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Run == nil {
		return errors.New("daemon: Program.Run is nil")
	}
	if p.done != nil {
		return errors.New("daemon: the service program was already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.run(ctx, p.done)
	return nil
}

func (p *Program) run(ctx context.Context, done chan struct{}) {
	err := p.Run(ctx)
	p.mu.Lock()
	p.err = err
	stopping := p.stopping
	p.mu.Unlock()
	close(done)
	if stopping {
		return
	}
	if err == nil {
		err = errors.New("returned without being asked to stop")
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Error("crmdrop stopped on its own; exiting so that the service manager restarts it", "err", err)
	exit := p.Exit
	if exit == nil {
		exit = os.Exit
	}
	exit(1)
}

// Stop cancels Run's context and waits for Run to return, at most StopTimeout. It
// returns Run's error (nil after a clean stop), or an error saying Run did not stop
// in time; the uploads then in flight stay "uploading" in the ledger and are
// reconciled at the next start. Stop before Start does nothing; Stop is idempotent.
func (p *Program) Stop(service.Service) error {
	p.mu.Lock()
	if p.done == nil {
		p.mu.Unlock()
		return nil
	}
	p.stopping = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	cancel()

	timeout := p.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	clock := p.Clock
	if clock == nil {
		clock = realClock{}
	}
	select {
	case <-done:
	case <-clock.After(timeout):
		return fmt.Errorf("crmdrop did not stop within %s; the uploads it was doing are checked at the next start", timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(p.err, context.Canceled) {
		return nil
	}
	return p.err
}

// Service manager settings. The restart delay is short because nothing crmdrop exits
// for fixes itself by waiting (an unmounted inbox does not make it exit), and the
// ledger makes a restart safe at any instant.
const (
	restartDelay = 5 * time.Second
	// failureResetPeriod is when Windows forgets earlier failures (seconds). With one
	// recovery action it only matters for the failure count shown in services.msc.
	failureResetPeriod = 24 * 60 * 60
)

// ServiceConfig is the registration of crmdrop as the service cfg.Service names:
// exe (absolute, from os.Executable) run as `exe run -c <cfgPath made absolute>`, so
// that it never depends on the working directory (a Windows service starts in
// System32). It sets, for each service manager kardianos/service supports:
//   - systemd: a unit (SystemdScript) that starts after the network is up, restarts
//     5 s after any exit it did not ask for (except status 2, a configuration error
//     that a restart cannot fix), and reads service.env_file if set;
//   - Windows: automatic (delayed) start and a recovery action that restarts the
//     service 5 s after every failure;
//   - launchd: start at load and keep alive.
//
// ServiceConfig is a pure function of its arguments, apart from making a relative
// cfgPath absolute against the working directory.
func ServiceConfig(cfg config.Config, cfgPath, exe string) *service.Config {
	if abs, err := filepath.Abs(cfgPath); err == nil {
		cfgPath = abs
	}
	name := oneLine(cfg.Service.Name)
	if name == "" {
		name = config.Default().Service.Name
	}
	display := oneLine(cfg.Service.DisplayName)
	if display == "" {
		display = name
	}
	desc := oneLine(cfg.Service.Description)
	if desc == "" {
		desc = "crmdrop: attaches the files dropped into its inbox folder to Zoho CRM records"
	}
	return &service.Config{
		Name:        name,
		DisplayName: display,
		Description: desc,
		UserName:    oneLine(cfg.Service.User),
		Executable:  exe,
		Arguments:   []string{"run", "-c", cfgPath},
		Option: service.KeyValue{
			// systemd
			"Restart":       "always",
			"SystemdScript": systemdUnit(cfg.Service.EnvFile),
			// Windows. OnFailureResetPeriod must be an int: kardianos ignores other types.
			"StartType":              "automatic",
			"DelayedAutoStart":       true, // the network and the share are up by then
			"OnFailure":              "restart",
			"OnFailureDelayDuration": restartDelay.String(),
			"OnFailureResetPeriod":   failureResetPeriod,
			// launchd (for trying it on a Mac): start at boot, restart when it exits,
			// and keep stderr in /usr/local/var/log.
			"RunAtLoad": true,
			"KeepAlive": true,
			"LogOutput": true,
		},
	}
}

// oneLine keeps a configured value from adding lines to a unit file.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s))
}

// systemdUnit is the unit template for kardianos/service's own engine, which is not
// text/template: {{Key}}, {{Key | fn}}, {{if Key}}, {{range Key}}{{.}}{{end}} over
// the keys its systemd Install passes (Description, Path, Arguments, UserName,
// Restart, …), and the functions cmd (quote) and cmdEscape (escape spaces). It is
// kardianos' built-in unit with: After/Wants=network-online.target (the inbox is
// often a network mount and Zoho is on the internet), RestartSec=5s instead of 120,
// RestartPreventExitStatus=2, TimeoutStopSec, no StandardOutput file (the journal
// keeps stderr), and EnvironmentFile= for service.env_file.
func systemdUnit(envFile string) string {
	var env string
	if p := systemdEnvFile(envFile); p != "" {
		// "-": a missing file is not systemd's problem; crmdrop reports it itself.
		env = "EnvironmentFile=-" + p + "\n"
	}
	return `[Unit]
Description={{Description}}
ConditionFileIsExecutable={{Path | cmdEscape}}
Wants=network-online.target
After=network-online.target
{{range Dependencies}}{{.}}
{{end}}
[Service]
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
{{if ChRoot}}RootDirectory={{ChRoot | cmd}}
{{end}}{{if WorkingDirectory}}WorkingDirectory={{WorkingDirectory | cmdEscape}}
{{end}}{{if UserName}}User={{UserName}}
{{end}}{{if LimitNOFILE}}LimitNOFILE={{LimitNOFILE}}
{{end}}{{if Restart}}Restart={{Restart}}
{{end}}RestartSec=` + fmt.Sprint(int(restartDelay.Seconds())) + `s
RestartPreventExitStatus=2
TimeoutStopSec=` + fmt.Sprint(int((DefaultStopTimeout + 10*time.Second).Seconds())) + `s
{{if SuccessExitStatus}}SuccessExitStatus={{SuccessExitStatus}}
{{end}}` + env + `{{range EnvVars}}{{.}}
{{end}}
[Install]
WantedBy=multi-user.target
`
}

// systemdEnvFile is envFile as a unit file value, or "" when it cannot be one: a
// line break, or braces the template engine would read as an action. crmdrop still
// reads the file itself then; systemd only adds reading it as root.
func systemdEnvFile(envFile string) string {
	if envFile == "" || strings.ContainsAny(envFile, "\n\r\x00") ||
		strings.Contains(envFile, "{{") || strings.Contains(envFile, "}}") {
		return ""
	}
	// % starts a systemd specifier (%h, %n, …).
	return strings.ReplaceAll(envFile, "%", "%%")
}

// NewLogHandler returns a slog.Handler that formats each record as text (without
// time: the system log stamps it) and writes it to l: Error for slog.LevelError and
// above, Warning for Warn, Info below. It is for the Windows Event Log, whose viewer
// filters by that level. opts may be nil. The handler is safe for concurrent use;
// an error from l is returned from Handle.
func NewLogHandler(l service.Logger, opts *slog.HandlerOptions) slog.Handler {
	var o slog.HandlerOptions
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	h := &logHandler{l: l, mu: new(sync.Mutex), buf: new(bytes.Buffer)}
	h.text = slog.NewTextHandler(h.buf, &o)
	return h
}

// logHandler renders with a TextHandler into a buffer it shares with the handlers
// derived from it (WithAttrs, WithGroup), under one mutex, then passes the line on.
type logHandler struct {
	l    service.Logger
	mu   *sync.Mutex
	buf  *bytes.Buffer
	text slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.text.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	line := strings.TrimSuffix(h.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.l.Error(line)
	case r.Level >= slog.LevelWarn:
		return h.l.Warning(line)
	default:
		return h.l.Info(line)
	}
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{l: h.l, mu: h.mu, buf: h.buf, text: h.text.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{l: h.l, mu: h.mu, buf: h.buf, text: h.text.WithGroup(name)}
}
