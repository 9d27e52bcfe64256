// Package clock is crmdrop's one time source: every part takes a Clock, so tests drive
// time by hand (internal/fakeclock) and decisions stay pure functions of now.
package clock

import "time"

// Clock tells the time and waits. Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }
