package uploader

import (
	"context"
	"sync"
	"time"
)

// backoff is the delay before retry n (n >= 1): full jitter over an exponentially
// growing, capped window, never below the server's hint. r is a uniform random number
// in [0,1); passing it in keeps the function pure and table-testable.
func backoff(n int, initial, max, hint time.Duration, r float64) time.Duration {
	window := initial
	for i := 1; i < n && window < max; i++ {
		window *= 2
	}
	if window > max {
		window = max
	}
	d := time.Duration(r * float64(window))
	if d < hint {
		d = hint
	}
	return d
}

// pacer spaces out request starts for every worker talking to one remote, as rclone's
// lib/pacer does: a 429 anywhere widens the gap for all, and the gap shrinks again with
// each success. While nobody has been throttled the gap is zero and the pacer costs a
// mutex.
type pacer struct {
	clock Clock
	min   time.Duration // the gap used right after the first throttle
	max   time.Duration

	mu    sync.Mutex
	gap   time.Duration
	next  time.Time // the earliest start of the next request
	count int       // throttles seen, for metrics
}

func newPacer(c Clock, min, max time.Duration) *pacer {
	return &pacer{clock: c, min: min, max: max}
}

// wait blocks until this caller's turn. It returns ctx.Err() if ctx ends first.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := p.clock.Now()
	at := now
	if p.next.After(at) {
		at = p.next
	}
	p.next = at.Add(p.gap)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.clock.After(d):
		}
	}
	return ctx.Err()
}

// throttled records a 429: the gap doubles (from min, up to max) and nobody starts a
// request before the server's Retry-After has passed.
func (p *pacer) throttled(retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	p.gap = min(max(p.gap*2, p.min), p.max)
	if until := p.clock.Now().Add(retryAfter); until.After(p.next) {
		p.next = until
	}
}

// succeeded lets the pace recover gradually: each success takes a quarter off the gap,
// so one lucky request does not unleash every worker on a server that just said no.
func (p *pacer) succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gap -= p.gap / 4
	if p.gap < p.min/8 {
		p.gap = 0
	}
}

func (p *pacer) current() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gap
}

// gate pauses every upload while a global error (revoked token, missing scope, token
// lockout) stands. While closed it lets exactly one caller through every probe interval;
// that caller's outcome opens the gate again or keeps it closed.
type gate struct {
	clock    Clock
	onChange func(reason string)

	mu        sync.Mutex
	reason    string // "" = open
	nextProbe time.Time
	probing   bool
	changed   chan struct{}
}

func newGate(c Clock, onChange func(string)) *gate {
	return &gate{clock: c, onChange: onChange, changed: make(chan struct{})}
}

// wait returns when the gate is open (probe false) or when it is this caller's turn to
// probe a closed gate (probe true: the caller must then call open, block or release).
func (g *gate) wait(ctx context.Context) (probe bool, err error) {
	for {
		g.mu.Lock()
		if g.reason == "" {
			g.mu.Unlock()
			return false, nil
		}
		now := g.clock.Now()
		if !g.probing && !now.Before(g.nextProbe) {
			g.probing = true
			g.mu.Unlock()
			return true, nil
		}
		changed := g.changed
		var timer <-chan time.Time
		if !g.probing {
			timer = g.clock.After(g.nextProbe.Sub(now))
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-changed:
		case <-timer:
		}
	}
}

func (g *gate) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// block closes the gate (or keeps it closed) until the next probe, after wait.
func (g *gate) block(reason string, wait time.Duration) {
	g.mu.Lock()
	was := g.reason
	g.reason = reason
	g.probing = false
	g.nextProbe = g.clock.Now().Add(wait)
	g.notifyLocked()
	g.mu.Unlock()
	if was != reason && g.onChange != nil {
		g.onChange(reason)
	}
}

// open lets everyone through again.
func (g *gate) open() {
	g.mu.Lock()
	was := g.reason
	g.reason = ""
	g.probing = false
	g.notifyLocked()
	g.mu.Unlock()
	if was != "" && g.onChange != nil {
		g.onChange("")
	}
}

// release hands the probe back unused (the prober stopped or its file went away).
func (g *gate) release() {
	g.mu.Lock()
	g.probing = false
	g.notifyLocked()
	g.mu.Unlock()
}

// blocked returns the reason the gate is closed, "" when open.
func (g *gate) blocked() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason
}
