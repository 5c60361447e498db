package proxy

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
)

// attempt is what one proxied request learned about the upstream, gathered from the transport,
// the response hook and the error handler, and read once the request is over.
type attempt struct {
	timeouts Timeouts
	report   func(ok bool) // tells the breaker; only the first call counts
	reported sync.Once

	mu         sync.Mutex
	timeout    *TimeoutError // the bound that was crossed, if any
	clientBody error         // the client's request body failed to arrive
	transport  bool          // the exchange failed before a response
	status     int           // the upstream's status, 0 without a response
}

type attemptKey struct{}

// tell reports the outcome to the breaker, once.
func (a *attempt) tell(ok bool) {
	a.reported.Do(func() {
		if a.report != nil {
			a.report(ok)
		}
	})
}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

func (a *attempt) timedOut(err *TimeoutError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timeout == nil {
		a.timeout = err
	}
}

func (a *attempt) clientBodyFailed(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clientBody == nil {
		a.clientBody = err
	}
}

func (a *attempt) responded(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = status
}

func (a *attempt) failed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.transport = true
}

// outcome is the attempt's final state, read under the lock.
type outcome struct {
	timeout    *TimeoutError
	clientBody error
	transport  bool
	status     int
}

func (a *attempt) outcome() outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	return outcome{timeout: a.timeout, clientBody: a.clientBody, transport: a.transport, status: a.status}
}

// upstreamFailed decides what the breaker is told. The upstream failed when it crossed a
// timeout, could not be reached or broke the connection, or answered 502, 503 or 504 (a gateway
// or overload answer of its own). Any other status is a working upstream answering, 500
// included: a 500 is usually about the request, and one bad request must not close a route for
// everybody. A request that ended because the client left, or whose own body failed to arrive,
// says nothing about the upstream and counts as a success, so that impatient or slow clients
// can never open the breaker.
func (o outcome) upstreamFailed(clientGone bool) bool {
	switch {
	case o.timeout != nil:
		return true
	case o.clientBody != nil || clientGone:
		return false
	case o.transport:
		return true
	}
	return o.status == http.StatusBadGateway || o.status == http.StatusServiceUnavailable || o.status == http.StatusGatewayTimeout
}

// clientTooSlow reports whether a request body failed because it arrived too slowly: the
// server's read deadline passed. Such a request gets 408 rather than 400.
func clientTooSlow(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
