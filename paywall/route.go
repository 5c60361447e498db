package paywall

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/payper/payper/pricing"
)

// route prices the request's path and sets it to the canonical path that was priced, which is
// what the protected handler (the proxy) forwards, so the upstream serves exactly what was
// priced. A path servers read in different ways gets 400 and an unlisted path, when the pricer
// denies those, 404; then route has answered and reports false. Neither reaches the upstream.
func (pw *Paywall) route(w http.ResponseWriter, r *http.Request) (pricing.Route, bool) {
	route, err := pw.opts.Pricer.Route(r.Method, requestPath(r.URL))
	var pe *pricing.PathError
	switch {
	case err == nil:
		r.URL.Path, r.URL.RawPath = route.Path, route.RawPath
		return route, true
	case errors.Is(err, pricing.ErrUnlisted):
		writeJSONError(w, http.StatusNotFound, "not_found", "no route is configured for this method and path")
	case errors.As(err, &pe):
		pw.log.Debug("ambiguous request path refused", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		writeJSONError(w, http.StatusBadRequest, "ambiguous_path",
			"the request path holds "+pe.Message+"; send the path without it")
	default: // not from pricing.Table; nothing is served unpriced
		pw.log.Error("pricing the request failed", "method", r.Method, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal_error", "the request could not be priced")
	}
	return route, false
}

// requestPath returns the path as the client escaped it. net/http keeps the raw form in RawPath
// only when it differs from Path's default escaping; RawPath is trusted only while it still
// decodes to Path (a handler in front may have changed one and not the other).
func requestPath(u *url.URL) string {
	if u.RawPath != "" {
		if p, err := url.PathUnescape(u.RawPath); err == nil && p == u.Path {
			return u.RawPath
		}
	}
	return u.EscapedPath()
}
