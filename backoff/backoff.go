// Package backoff retries operations whose failure may pass, waiting exponentially longer between
// attempts with random jitter, so that many callers recovering from one outage do not retry in
// step. It decides only when to try again; what is safe to retry is the caller's judgement.
//
// The package imports only the standard library.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy describes a schedule of retries. The zero value retries three times, starting at
// 100 ms and doubling up to 5 s.
type Policy struct {
	// Initial is the base delay before the second attempt (default 100 ms).
	Initial time.Duration
	// Max caps the base delay (default 5 s).
	Max time.Duration
	// Attempts is how many times the operation runs at most, the first included (default 4).
	// A negative value means no limit: only the context ends the retries.
	Attempts int
	// Sleep waits d or until ctx ends; tests replace it. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a value in [0, 1); tests replace it. Default: math/rand/v2.
	Jitter func() float64
}

// Delay returns the wait before attempt n+1 after n failed attempts (n ≥ 1): the base delay
// doubles from Initial up to Max, and the wait is drawn uniformly from [base/2, base) ("equal
// jitter"): never zero, never more than the base.
func (p Policy) Delay(n int) time.Duration {
	p = p.withDefaults()
	base := p.Initial
	for i := 1; i < n && base < p.Max; i++ {
		base *= 2
	}
	base = min(base, p.Max)
	half := base / 2
	return half + time.Duration(p.Jitter()*float64(base-half))
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Attempts == 0 {
		p.Attempts = 4
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	if p.Jitter == nil {
		p.Jitter = rand.Float64
	}
	return p
}

// RetryAfterError is implemented by errors that carry the server's own estimate of when to try
// again (an HTTP Retry-After, a breaker's open period). Retry waits at least that long.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that Retry returns it at once (unwrapped) instead of trying again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Retry runs op until it succeeds, fails with an error retryable reports false for (nil
// retryable retries every error), returns an error wrapped by Permanent, the attempts run out,
// or ctx ends. It returns op's last error; when ctx ended while waiting, that error joined with
// the context's.
func Retry(ctx context.Context, p Policy, retryable func(error) bool, op func(ctx context.Context) error) error {
	p = p.withDefaults()
	for n := 1; ; n++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if (retryable != nil && !retryable(err)) || (p.Attempts > 0 && n >= p.Attempts) {
			return err
		}
		wait := p.Delay(n)
		var hinted RetryAfterError
		if errors.As(err, &hinted) && hinted.RetryAfter() > wait {
			wait = min(hinted.RetryAfter(), max(p.Max, wait))
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// Sleep waits d, or until ctx ends (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
