// Package breaker is a circuit breaker: after a run of consecutive failures it stops calls to a
// dependency that is down (open), so callers are answered at once instead of each waiting for a
// timeout; after a cool-down it lets a few probe calls through (half-open) and closes again when
// they succeed. The cool-down doubles, up to a bound, each time a probe fails.
//
// The package imports only the standard library.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// State is a breaker's state.
type State int

// Breaker states.
const (
	Closed   State = iota // calls pass; failures are counted
	Open                  // calls are refused until the cool-down ends
	HalfOpen              // a few probe calls pass; their outcome decides
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ErrOpen is matched (errors.Is) by the error Allow returns while the breaker refuses calls.
var ErrOpen = errors.New("circuit breaker open")

// OpenError is the refusal Allow returns: which breaker, and when it will let a probe through.
type OpenError struct {
	Name  string
	Until time.Duration // from now until a probe may pass
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%s: circuit breaker open; retry in %s", e.Name, e.Until.Round(time.Second))
}

// Is makes an OpenError match ErrOpen.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// RetryAfter is the time until a probe may pass.
func (e *OpenError) RetryAfter() time.Duration { return e.Until }

// Options configure a Breaker.
type Options struct {
	// Name appears in logs and errors ("upstream", "chain rpc").
	Name string
	// Failures is how many consecutive failures open the breaker (default 5).
	Failures int
	// OpenFor is the first cool-down (default 5 s); it doubles after each failed probe up to
	// MaxOpenFor (default 1 min).
	OpenFor    time.Duration
	MaxOpenFor time.Duration
	// Probes is how many calls may be in flight while half-open (default 1); that many
	// successes in a row close the breaker.
	Probes int
	Now    func() time.Time
	Logger *slog.Logger
	// OnChange, when set, is told of every state change (after the log line).
	OnChange func(from, to State)
}

// Breaker is safe for concurrent use. Create it with New.
type Breaker struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	state     State
	failures  int           // consecutive, while closed
	openFor   time.Duration // the current cool-down
	openUntil time.Time
	probing   int // probes in flight while half-open
	passed    int // probes that succeeded while half-open
}

// New returns a closed breaker.
func New(opts Options) *Breaker {
	if opts.Failures <= 0 {
		opts.Failures = 5
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = 5 * time.Second
	}
	if opts.MaxOpenFor < opts.OpenFor {
		opts.MaxOpenFor = max(time.Minute, opts.OpenFor)
	}
	if opts.Probes <= 0 {
		opts.Probes = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Breaker{opts: opts, log: log, openFor: opts.OpenFor}
}

// Allow asks to make one call. When the breaker refuses, it returns an *OpenError. Otherwise the
// caller must report the call's outcome exactly once with done: true for success, false for a
// failure of the dependency (not of the caller's own input).
func (b *Breaker) Allow() (done func(ok bool), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	if b.state == Open {
		if now.Before(b.openUntil) {
			return nil, &OpenError{Name: b.opts.Name, Until: b.openUntil.Sub(now)}
		}
		b.setState(HalfOpen, "cool-down over; probing")
		b.probing, b.passed = 0, 0
	}
	if b.state == HalfOpen {
		if b.probing >= b.opts.Probes {
			return nil, &OpenError{Name: b.opts.Name, Until: b.openFor}
		}
		b.probing++
	}
	probe := b.state == HalfOpen
	var once sync.Once
	return func(ok bool) { once.Do(func() { b.report(probe, ok) }) }, nil
}

// Refusing reports, without taking a probe slot, whether Allow would refuse a call now, and how
// long until a probe may pass. Callers use it to turn work away before doing any (a paid request
// is not verified while the upstream is known to be down).
func (b *Breaker) Refusing() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if wait := b.openUntil.Sub(b.opts.Now()); wait > 0 {
			return wait, true
		}
	case HalfOpen:
		if b.probing >= b.opts.Probes {
			return b.openFor, true
		}
	}
	return 0, false
}

// State returns the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *Breaker) report(probe, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case probe && b.state == HalfOpen:
		b.probing--
		if !ok {
			b.openFor = min(2*b.openFor, b.opts.MaxOpenFor)
			b.trip("probe failed")
			return
		}
		if b.passed++; b.passed >= b.opts.Probes {
			b.failures, b.openFor = 0, b.opts.OpenFor
			b.setState(Closed, "probes succeeded")
		}
	case b.state == Closed:
		if ok {
			b.failures = 0
			return
		}
		if b.failures++; b.failures >= b.opts.Failures {
			b.trip(fmt.Sprintf("%d consecutive failures", b.failures))
		}
	}
	// Outcomes of calls let through before the breaker opened say nothing new.
}

func (b *Breaker) trip(why string) {
	b.openUntil = b.opts.Now().Add(b.openFor)
	b.setState(Open, why)
}

func (b *Breaker) setState(to State, why string) {
	from := b.state
	if from == to {
		return
	}
	b.state = to
	level := slog.LevelInfo
	if to == Open {
		level = slog.LevelWarn
	}
	b.log.Log(context.Background(), level, "circuit breaker "+to.String(), "breaker", b.opts.Name, "from", from.String(), "why", why,
		"open_for", b.openFor)
	if b.opts.OnChange != nil {
		b.opts.OnChange(from, to)
	}
}
