package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/x402"
)

// DefaultMaxRetries is how many times a request is sent again when Transport.MaxRetries is 0.
const DefaultMaxRetries = 3

// maxDrainBytes bounds what is read from an answer that is retried, so its connection can be
// reused.
const maxDrainBytes = 64 << 10

// retryAnswer is a response that asks for another attempt. It satisfies
// backoff.RetryAfterError, so a server's Retry-After lengthens the wait (within the policy's
// maximum).
type retryAnswer struct {
	status int
	after  time.Duration
}

func (r *retryAnswer) Error() string             { return fmt.Sprintf("server answered %d", r.status) }
func (r *retryAnswer) RetryAfter() time.Duration { return r.after }

// attempts is how many times one request may be sent.
func (t *Transport) attempts() int {
	switch {
	case t.MaxRetries < 0:
		return 1
	case t.MaxRetries == 0:
		return DefaultMaxRetries + 1
	}
	return t.MaxRetries + 1
}

// roundTripRetrying sends the request build makes, again after a connection error or an answer
// retryable approves, with the transport's backoff policy, until an answer is final or the
// attempts run out. The last answer is returned whatever its status. unknown reports that some
// attempt failed without an answer: the server may have acted on it.
func (t *Transport) roundTripRetrying(ctx context.Context, build func(attempt int) (*http.Request, error),
	retryable func(*http.Response) bool) (resp *http.Response, unknown bool, err error) {
	policy := t.RetryPolicy
	policy.Attempts = t.attempts()
	attempt := 0
	err = backoff.Retry(ctx, policy, nil, func(ctx context.Context) error {
		attempt++
		req, berr := build(attempt)
		if berr != nil {
			return backoff.Permanent(berr)
		}
		r, rerr := t.base().RoundTrip(req)
		if rerr != nil {
			if ctx.Err() != nil {
				return backoff.Permanent(rerr)
			}
			unknown = true
			return rerr
		}
		if attempt == policy.Attempts || !retryable(r) {
			resp = r
			return nil
		}
		io.Copy(io.Discard, io.LimitReader(r.Body, maxDrainBytes))
		r.Body.Close()
		return &retryAnswer{status: r.StatusCode, after: retryAfter(r.Header.Get("Retry-After"), time.Now())}
	})
	if resp != nil {
		return resp, unknown, nil
	}
	var answer *retryAnswer
	if errors.As(err, &answer) {
		// Only a cancelled wait ends on a retried answer; its body is gone.
		err = fmt.Errorf("client: giving up after %d attempts: %w", attempt, err)
	}
	return nil, unknown, err
}

// retryAfter reads a Retry-After value, seconds or an HTTP date, as a duration from now.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// unavailable reports the answers that say "not now": a gateway or proxy that could not reach
// what is behind it.
func unavailable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// retryableUnpaid: an unpaid request is resent only when its method is idempotent (or it
// carries its own Idempotency-Key), since the server may have acted on it.
func retryableUnpaid(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// retryablePaid decides whether a paid attempt is sent again, with the same payment. Besides
// "not now" answers, a server that got a payment identifier asks for a retry with 409 and
// Retry-After while the first copy is still being served, and answers 402 settlement_pending
// until the payment's settlement lands, after which the same payment gets the response.
func retryablePaid(resp *http.Response, identified bool) bool {
	if unavailable(resp.StatusCode) {
		return true
	}
	if !identified {
		return false
	}
	switch resp.StatusCode {
	case http.StatusConflict:
		return resp.Header.Get("Retry-After") != ""
	case http.StatusPaymentRequired:
		s, _ := SettlementFrom(resp)
		return s != nil && !s.Success && s.ErrorReason == string(x402.ReasonSettlementPending)
	}
	return false
}
