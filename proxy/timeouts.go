package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// Timeouts bound one exchange with the upstream. A zero field sets no bound.
type Timeouts struct {
	// Connect bounds getting a connection: waiting for a pooled one, dialing, the TLS handshake.
	Connect time.Duration
	// Header bounds how long the upstream may go without progress before its response headers
	// arrive: the clock restarts whenever it accepts more of the request body, so a large upload
	// at a steady pace is not cut, while an upstream that never answers is.
	Header time.Duration
	// Idle bounds each wait for the next bytes of the response body, so a stream that keeps
	// sending lives on and one that stalls is cut.
	Idle time.Duration
	// Total bounds the whole exchange, the response body included.
	Total time.Duration
}

type timeoutsKey struct{}

// WithTimeouts returns a context under which requests through a Proxy use t instead of the
// proxy's own Options.Timeouts. It lets a caller bound one route differently from the rest
// without the proxy knowing about routes.
func WithTimeouts(ctx context.Context, t Timeouts) context.Context {
	return context.WithValue(ctx, timeoutsKey{}, t)
}

// TimeoutError reports which bound an upstream exchange crossed.
type TimeoutError struct {
	Phase string // "connect", "response headers", "response body idle" or "total"
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("upstream %s timeout after %s", e.Phase, e.After)
}

// Timeout marks the error as a timeout for callers that test net.Error-style.
func (e *TimeoutError) Timeout() bool { return true }

// Phases of an exchange that a timeout names.
const (
	phaseConnect = "connect"
	phaseHeader  = "response headers"
	phaseIdle    = "response body idle"
	phaseTotal   = "total"
)

// timeoutTransport enforces the Timeouts of the request's attempt around a base transport. It
// cancels the outbound request's context when a bound is crossed and records which one, so the
// proxy can answer 504 and tell the breaker.
type timeoutTransport struct {
	base http.RoundTripper
}

func (t timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptFrom(req.Context())
	if a == nil {
		return t.base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{a: a, cancel: cancel}
	w.startTotal(a.timeouts.Total)
	w.arm(phaseConnect, a.timeouts.Connect)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { w.arm(phaseHeader, a.timeouts.Header) },
	})
	out := req.WithContext(ctx)
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &requestBody{ReadCloser: out.Body, w: w}
	}
	resp, err := t.base.RoundTrip(out)
	w.disarm()
	if err != nil {
		w.stop()
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection (a WebSocket) is no longer an exchange these bounds describe,
		// and its body must stay the raw connection for the upgrade to work.
		w.release()
		return resp, nil
	}
	resp.Body = &responseBody{ReadCloser: resp.Body, w: w}
	return resp, nil
}

// watch runs the timers of one exchange. One phase timer is re-armed as the exchange moves on
// (connect, then headers, then each body read); the total timer runs beside it.
type watch struct {
	a      *attempt
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	phase    string
	after    time.Duration
	deadline time.Time // zero while disarmed
	timer    *time.Timer
	total    *time.Timer
	stopped  bool
}

func (w *watch) startTotal(d time.Duration) {
	if d > 0 {
		w.total = time.AfterFunc(d, func() { w.expire(phaseTotal, d) })
	}
}

// arm starts the phase timer for d; d ≤ 0 leaves the phase unbounded.
func (w *watch) arm(phase string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.phase, w.after = phase, d
	if d <= 0 {
		w.deadline = time.Time{}
		return
	}
	w.deadline = time.Now().Add(d)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
	} else {
		w.timer.Reset(d)
	}
}

// rearm restarts the current phase's clock if it is still phase: progress was made.
func (w *watch) rearm(phase string) {
	w.mu.Lock()
	current, d := w.phase, w.after
	w.mu.Unlock()
	if current == phase && d > 0 {
		w.arm(phase, d)
	}
}

func (w *watch) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = time.Time{}
	if w.timer != nil {
		w.timer.Stop()
	}
}

// fire runs when the phase timer goes off. A timer stopped or reset just as it fired may still
// call it, so the deadline decides.
func (w *watch) fire() {
	w.mu.Lock()
	if w.stopped || w.deadline.IsZero() || time.Now().Before(w.deadline) {
		w.mu.Unlock()
		return
	}
	phase, d := w.phase, w.after
	w.mu.Unlock()
	w.expire(phase, d)
}

func (w *watch) expire(phase string, d time.Duration) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	err := &TimeoutError{Phase: phase, After: d}
	w.a.timedOut(err)
	w.cancel(err)
}

// release stops the timers without ending the exchange.
func (w *watch) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.total != nil {
		w.total.Stop()
	}
}

// stop ends the exchange: timers off, context released.
func (w *watch) stop() {
	w.release()
	w.cancel(nil)
}

// requestBody counts the upstream accepting request bytes as progress, and tells the attempt
// when the client's body failed, which is the client's fault and not the upstream's.
type requestBody struct {
	io.ReadCloser
	w *watch
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.rearm(phaseHeader)
	}
	if err != nil && err != io.EOF {
		b.w.a.clientBodyFailed(err)
	}
	return n, err
}

// responseBody bounds each wait for the upstream's next bytes.
type responseBody struct {
	io.ReadCloser
	w *watch
}

func (b *responseBody) Read(p []byte) (int, error) {
	b.w.arm(phaseIdle, b.w.a.timeouts.Idle)
	n, err := b.ReadCloser.Read(p)
	b.w.disarm()
	return n, err
}

func (b *responseBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}
