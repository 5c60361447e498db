// Package proxy forwards requests to one upstream HTTP service.
//
// It is a thin layer over httputil.ReverseProxy that fixes the choices a
// gateway needs: bodies stream in both directions (responses are flushed as
// they arrive, so server-sent events and chunked streams flow), upstream
// status codes and bodies pass through unchanged, X-Forwarded-For/Host/Proto
// describe the real client (values the client sent are discarded),
// hop-by-hop headers are removed, and named request headers can be stripped
// before they reach the upstream.
//
// Every exchange is bounded (Timeouts: connect, response headers, idle
// between body reads, total), globally or per request through the context
// (WithTimeouts). An upstream that cannot be reached gets the client a 502,
// one that crosses a bound before answering a 504, both with a small JSON
// body; causes go only to the log. A response cut mid-body is aborted (the
// connection is dropped) because its status is already sent. An optional
// Breaker is asked before each request and told whether the upstream failed;
// while it refuses, requests get 503 with Retry-After at once.
//
// The package knows nothing about payments and imports only the standard
// library.
package proxy
