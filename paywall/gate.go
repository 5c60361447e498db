package paywall

import (
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
	seconds := max(int64((wait+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(seconds, 10))
	writeJSONError(w, http.StatusServiceUnavailable, "upstream_unavailable",
		"the service is unavailable; no payment was checked or charged, retry later")
	return true
}
