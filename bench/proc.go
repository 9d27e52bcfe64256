package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"crmdrop/config"
	"crmdrop/daemon"
	"crmdrop/zoho/zohotest"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ). It is 100 on
// every Linux the Go toolchain targets; glibc's sysconf(_SC_CLK_TCK) returns the same.
const clockTick = 10 * time.Millisecond

// Environment variables through which the daemon gets its secrets, as an admin would
// pass them (never in the config file).
const (
	envSecret  = "BENCH_CLIENT_SECRET"
	envRefresh = "BENCH_REFRESH_TOKEN"
)

// daemonConfig is what a scenario varies in the daemon's config file.
type daemonConfig struct {
	Inbox, State string
	Workers      int
	Settle       time.Duration
	Rescan       time.Duration // 0 = the default (1m)
	AfterUpload  string        // "" = move
	LogLevel     string        // "" = info
}

// writeConfig writes a config file for fake into dir and returns its path.
func writeConfig(dir string, fake *zohotest.Server, c daemonConfig) (string, error) {
	if c.Rescan == 0 {
		c.Rescan = time.Minute
	}
	if c.AfterUpload == "" {
		c.AfterUpload = "move"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	text := fmt.Sprintf(`inbox: %q
state_dir: %q
zoho:
  accounts_url: %s
  api_domain: %s
  client_id: %s
  client_secret: ${%s}
  refresh_token: ${%s}
workers: %d
settle: %s
rescan_interval: %s
after_upload: %s
admin_listen: ""
log:
  level: %s
`, c.Inbox, c.State, fake.URL(), fake.URL(), zohotest.DefaultClientID, envSecret, envRefresh,
		c.Workers, c.Settle, c.Rescan, c.AfterUpload, c.LogLevel)
	path := filepath.Join(dir, "config.yaml")
	return path, os.WriteFile(path, []byte(text), 0o600)
}

// proc is one running daemon: a child process (the normal case, so that its memory and
// CPU are its own), or, with -inproc, daemon.Run on goroutines of this process (for
// profiling; /proc/self then mixes in the fake and the bench).
type proc struct {
	pid     int
	logPath string
	started time.Time
	exited  chan struct{}
	waitErr error
	state   *os.ProcessState // child only, once exited

	cmd    *exec.Cmd          // child
	cancel context.CancelFunc // in-process
}

// startDaemon starts `crmdrop run -c cfgPath` (or its in-process equivalent), logging
// to a file beside the config.
func (b *bench) startDaemon(cfgPath string) (*proc, error) {
	logPath := filepath.Join(filepath.Dir(cfgPath), "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{logPath: logPath, exited: make(chan struct{})}
	if b.inproc {
		return p, b.startInProc(p, cfgPath, logf)
	}
	cmd := exec.Command(b.bin, "run", "-c", cfgPath)
	cmd.Env = append(os.Environ(), envSecret+"="+zohotest.DefaultClientSecret, envRefresh+"="+zohotest.DefaultRefreshToken)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A bench stopped with Ctrl-C or killed must not leave a daemon running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start crmdrop: %w", err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// startSettled starts the daemon and waits until it has started and its CPU has gone
// quiet (first scan and token done), so a scenario measures only what it drops. On
// error the daemon is stopped.
func (b *bench) startSettled(cfgPath string) (*proc, error) {
	p, err := b.startDaemon(cfgPath)
	if err != nil {
		return nil, err
	}
	if err := p.waitLog("crmdrop started", 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	if _, err := p.waitQuiet(300*time.Millisecond, 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (b *bench) startInProc(p *proc, cfgPath string, logf *os.File) error {
	os.Setenv(envSecret, zohotest.DefaultClientSecret)
	os.Setenv(envRefresh, zohotest.DefaultRefreshToken)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		logf.Close()
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		logf.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.pid, p.started = cancel, os.Getpid(), time.Now()
	go func() {
		p.waitErr = d.Run(ctx)
		d.Close()
		logf.Close()
		close(p.exited)
	}()
	return nil
}

// stop asks the daemon to stop as a service manager would (SIGTERM) and waits for it.
// A daemon that does not exit within 30 s is killed and reported.
func (p *proc) stop() error {
	if p.cancel != nil {
		p.cancel()
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
		}
		<-p.exited
		return errors.New("crmdrop did not stop within 30s of SIGTERM")
	}
	if p.waitErr != nil {
		return fmt.Errorf("crmdrop exited: %v (log: %s)", p.waitErr, p.logPath)
	}
	return nil
}

// alive reports an error if the daemon has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("crmdrop exited early: %v; its log:\n%s", p.waitErr, tail(p.logPath, 20))
	default:
		return nil
	}
}

// cpu returns the CPU time (user + system) the daemon has used so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime + stime from the text of /proc/<pid>/stat. The command name
// (field 2) may contain spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable utime/stime in /proc stat")
	}
	return time.Duration(u+s) * clockTick, nil
}

// memInfo is the daemon's memory, in bytes, from /proc/<pid>/status.
type memInfo struct {
	HWM     int64 // VmHWM: peak resident set since start
	RSS     int64 // VmRSS now
	Anon    int64 // RssAnon now: heap, stacks
	File    int64 // RssFile now: the binary, and the ledger's mmap
	Threads int64
}

func (p *proc) mem() (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return memInfo{}, err
	}
	return parseStatus(b), nil
}

// parseStatus picks the fields of memInfo out of /proc/<pid>/status ("VmHWM:  1234 kB").
func parseStatus(b []byte) memInfo {
	var m memInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		switch name {
		case "VmHWM":
			m.HWM = n
		case "VmRSS":
			m.RSS = n
		case "RssAnon":
			m.Anon = n
		case "RssFile":
			m.File = n
		case "Threads":
			m.Threads = n
		}
	}
	return m
}

// waitLog waits until the daemon's log contains s.
func (p *proc) waitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, _ := os.ReadFile(p.logPath); bytes.Contains(b, []byte(s)) {
			return nil
		}
		if err := p.alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("crmdrop did not log %q within %v; its log:\n%s", s, timeout, tail(p.logPath, 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sample is one reading of the daemon's CPU and memory.
type sample struct {
	at  time.Time
	cpu time.Duration
	mem memInfo
}

// sampler reads the daemon's CPU and memory every interval until stopped.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	all   []sample
	peak  memInfo // the largest of each field seen
}

func (p *proc) sample(interval time.Duration) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			c, err1 := p.cpu()
			m, err2 := p.mem()
			if err1 == nil && err2 == nil {
				s.all = append(s.all, sample{at: time.Now(), cpu: c, mem: m})
				s.peak = memInfo{
					HWM: max(s.peak.HWM, m.HWM), RSS: max(s.peak.RSS, m.RSS),
					Anon: max(s.peak.Anon, m.Anon), File: max(s.peak.File, m.File),
					Threads: max(s.peak.Threads, m.Threads),
				}
			}
			select {
			case <-s.stopc:
				return
			case <-p.exited:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() []sample {
	close(s.stopc)
	<-s.done
	return s.all
}

// waitQuiet waits until the daemon has used at most one clock tick of CPU over quiet,
// and returns when it was last busy: the moment it reached a steady state.
func (p *proc) waitQuiet(quiet, timeout time.Duration) (time.Time, error) {
	const every = 20 * time.Millisecond
	deadline := time.Now().Add(timeout)
	quietCPU, err := p.cpu()
	if err != nil {
		return time.Time{}, err
	}
	busyAt, quietFrom := time.Now(), time.Now()
	for {
		time.Sleep(every)
		if err := p.alive(); err != nil {
			return time.Time{}, err
		}
		c, err := p.cpu()
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if c-quietCPU > clockTick {
			// Busy: the quiet window starts again from here. One stray tick within
			// the window (the runtime's background work) does not count.
			busyAt, quietFrom, quietCPU = now, now, c
		}
		if now.Sub(quietFrom) >= quiet {
			return busyAt, nil
		}
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("crmdrop still busy after %v", timeout)
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
