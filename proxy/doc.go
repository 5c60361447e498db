// Package proxy forwards requests to one upstream HTTP service.
//
// It is a thin layer over httputil.ReverseProxy that fixes the choices a
// gateway needs: bodies stream in both directions (responses are flushed as
// they arrive, so server-sent events and chunked streams flow), upstream
// status codes and bodies pass through unchanged, X-Forwarded-For/Host/Proto
// describe the real client (values the client sent are discarded),
// hop-by-hop headers are removed, and named request headers can be stripped
// before they reach the upstream. When the upstream cannot be reached the
// client gets a 502 with a small JSON body; the cause goes only to the log.
//
// The package knows nothing about payments and imports only the standard
// library.
package proxy
