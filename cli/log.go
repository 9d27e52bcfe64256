package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"strings"

	"github.com/kardianos/service"
	"gopkg.in/natefinch/lumberjack.v2"

	"crmdrop/config"
	"crmdrop/daemon"
)

// newLogger builds the one logger of the process: text or JSON, to w or to the rotated
// log.file, with every configured secret and anything shaped like a Zoho token masked,
// whatever the level.
func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, func(), error) {
	closer := func() {}
	if cfg.Log.File != "" {
		// lumberjack rotates by size and keeps a few old files: a service left alone
		// for a year must not fill the disk with its log.
		lj := &lumberjack.Logger{Filename: cfg.Log.File, MaxSize: 20, MaxBackups: 5, MaxAge: 90}
		w = lj
		closer = func() { lj.Close() }
	}
	hopts := handlerOptions(cfg)
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(&redactor{next: h, secrets: cfg.Secrets()}), closer, nil
}

// newServiceLogger is newLogger for a process the service manager started. The
// system log is where an administrator looks: on Linux that is stderr, which systemd
// puts in the journal; on Windows, where a service has no stderr, the Event Log
// (s.SystemLogger). log.file, when set, wins everywhere.
func newServiceLogger(cfg config.Config, w io.Writer, s service.Service) (*slog.Logger, func(), error) {
	if cfg.Log.File != "" || runtime.GOOS != "windows" {
		return newLogger(cfg, w)
	}
	sl, err := s.SystemLogger(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open the Windows Event Log: %w; set log.file to log to a file instead", err)
	}
	h := daemon.NewLogHandler(sl, handlerOptions(cfg))
	return slog.New(&redactor{next: h, secrets: cfg.Secrets()}), func() {}, nil
}

func handlerOptions(cfg config.Config) *slog.HandlerOptions {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	return &slog.HandlerOptions{Level: level}
}

// Zoho access and refresh tokens look like "1000.<hex>.<hex>"; masking the shape
// catches tokens minted after start-up, which no configuration lists.
var tokenShape = regexp.MustCompile(`1000\.[0-9A-Za-z]{16,}(\.[0-9A-Za-z]+)*`)

// redactor masks secrets in the message and in every string attribute.
type redactor struct {
	next    slog.Handler
	secrets []string
}

func (r *redactor) mask(s string) string {
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return tokenShape.ReplaceAllString(s, "[redacted]")
}

func (r *redactor) maskAttr(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.mask(a.Value.String()))
	case slog.KindGroup:
		attrs := a.Value.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = r.maskAttr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, r.mask(err.Error()))
		}
		return slog.String(a.Key, r.mask(a.Value.String()))
	}
	return a
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.mask(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.maskAttr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = r.maskAttr(a)
	}
	return &redactor{next: r.next.WithAttrs(masked), secrets: r.secrets}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name), secrets: r.secrets}
}
