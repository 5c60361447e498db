package paywall

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Gate tells the paywall that the protected handler cannot serve now, its upstream being known
// to be down; *breaker.Breaker implements it. The paywall asks before it decodes or verifies
// anything, so a refused request costs no signature check and reserves nothing.
type Gate interface {
	// Refusing reports whether requests are turned away now, and how long until they may
	// pass again.
	Refusing() (retryAfter time.Duration, refusing bool)
}

// refusedByGate answers 503 with Retry-After when the gate refuses, and reports whether it did.
func (pw *Paywall) refusedByGate(w http.ResponseWriter) bool {
	if pw.opts.Gate == nil {
		return false
	}
	wait, refusing := pw.opts.Gate.Refusing()
	if !refusing {
		return false
	}
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	writeJSONError(w, http.StatusServiceUnavailable, "upstream_unavailable",
		"the service is unavailable; no payment was checked or charged, retry later")
	return true
}

// defaultRetryAfter is what a 503 suggests when its cause gives no estimate.
const defaultRetryAfter = 2 * time.Second

// retryAfterSeconds renders wait as a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) string {
	return strconv.FormatInt(max(int64((wait+time.Second-1)/time.Second), 1), 10)
}

// retryAfterOf is the wait an unavailable dependency's error estimates (an open circuit
// breaker's cool-down), or defaultRetryAfter.
func retryAfterOf(err error) string {
	var hint interface{ RetryAfter() time.Duration }
	if errors.As(err, &hint) && hint.RetryAfter() > 0 {
		return retryAfterSeconds(hint.RetryAfter())
	}
	return retryAfterSeconds(defaultRetryAfter)
}
