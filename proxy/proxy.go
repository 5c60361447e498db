package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"time"
)

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Transport sends requests upstream. Nil means NewTransport().
	Transport http.RoundTripper
	// StripRequestHeaders are removed from every request before it goes
	// upstream (names are case-insensitive).
	StripRequestHeaders []string
	// Rewrite, if set, runs last on each outbound request, after the URL,
	// X-Forwarded-* headers and stripping are done. A header it sets reaches
	// the upstream even if StripRequestHeaders names it, which lets a caller
	// strip a client-supplied header and set its own trusted value.
	Rewrite func(*httputil.ProxyRequest)
	// Timeouts bound each exchange with the upstream unless the request's context carries its
	// own (WithTimeouts). The zero value bounds nothing.
	Timeouts Timeouts
	// Breaker, when set, is asked before each request is forwarded and told how the upstream
	// did; while it refuses, requests are answered 503 with Retry-After at once.
	Breaker Breaker
	// Logger receives upstream failures. Nil discards them.
	Logger *slog.Logger
}

// Breaker admits requests to the upstream and learns from their outcomes; *breaker.Breaker
// implements it. When Allow refuses, its error may tell when to retry through a
// RetryAfter() time.Duration method.
type Breaker interface {
	Allow() (done func(ok bool), err error)
}

// Proxy is an http.Handler that forwards every request to the upstream.
type Proxy struct {
	rp       *httputil.ReverseProxy
	log      *slog.Logger
	timeouts Timeouts
	breaker  Breaker
}

// New returns a Proxy for upstream, an absolute http or https URL. The
// request path is appended to the upstream's path ("http://h/api" and
// "/v1/x" give "/api/v1/x") and the query strings are combined.
func New(upstream *url.URL, opts Options) (*Proxy, error) {
	if upstream == nil {
		return nil, errors.New("proxy: upstream URL is nil")
	}
	if upstream.Scheme != "http" && upstream.Scheme != "https" {
		return nil, fmt.Errorf("proxy: upstream scheme must be http or https, not %q", upstream.Scheme)
	}
	if upstream.Host == "" {
		return nil, errors.New("proxy: upstream URL has no host")
	}
	target := *upstream // the caller's URL may change later; ours must not
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewTransport()
	}
	strip := make([]string, len(opts.StripRequestHeaders))
	for i, h := range opts.StripRequestHeaders {
		strip[i] = textproto.CanonicalMIMEHeaderKey(h)
	}
	p := &Proxy{log: log, timeouts: opts.Timeouts, breaker: opts.Breaker}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&target)
			pr.SetXForwarded()
			for _, h := range strip {
				pr.Out.Header.Del(h)
			}
			if opts.Rewrite != nil {
				opts.Rewrite(pr)
			}
		},
		Transport: timeoutTransport{base: transport},
		ModifyResponse: func(resp *http.Response) error {
			if a := attemptFrom(resp.Request.Context()); a != nil {
				a.responded(resp.StatusCode)
				if resp.StatusCode == http.StatusSwitchingProtocols {
					// An upgraded connection (a WebSocket) may live for hours; the upstream
					// answered, and a half-open breaker must not wait that long for its probe.
					a.tell(true)
				}
			}
			return nil
		},
		// Flush every write at once so event streams are not held back.
		FlushInterval: -1,
		ErrorHandler:  p.handleError,
		// Failures while copying a response body are logged here.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// ServeHTTP forwards r to the upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := &attempt{timeouts: p.timeouts}
	if p.breaker != nil {
		done, err := p.breaker.Allow()
		if err != nil {
			p.refuse(w, r, err)
			return
		}
		a.report = done
	}
	// Let a streaming request body keep flowing while the response streams
	// back. HTTP/2 connections are always full duplex, hence the ignored error.
	_ = http.NewResponseController(w).EnableFullDuplex()
	if t, ok := r.Context().Value(timeoutsKey{}).(Timeouts); ok {
		a.timeouts = t
	}
	r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, a))
	// Deferred so that it also runs when the reverse proxy aborts a response mid-body (it
	// panics with http.ErrAbortHandler, which net/http turns into a dropped connection).
	defer func() {
		o := a.outcome()
		failed := o.upstreamFailed(r.Context().Err() != nil)
		if o.timeout != nil && o.status != 0 {
			p.log.WarnContext(r.Context(), "upstream response cut by a timeout",
				"method", r.Method, "path", r.URL.Path, "status", o.status, "phase", o.timeout.Phase, "after", o.timeout.After)
		}
		a.tell(!failed)
	}()
	p.rp.ServeHTTP(w, r)
}

// Bodies of the proxy's own answers: protocol words only, because causes can reveal internal
// addresses; they go to the log.
const (
	bodyUnavailable = `{"error":"upstream_unavailable","message":"the upstream could not be reached"}` + "\n"
	bodyTimeout     = `{"error":"upstream_timeout","message":"the upstream did not answer in time"}` + "\n"
	bodyOpen        = `{"error":"upstream_unavailable","message":"the upstream is failing; retry later"}` + "\n"
	bodyBadRequest  = `{"error":"request_body_failed","message":"the request body did not arrive"}` + "\n"
	bodyTooSlow     = `{"error":"request_timeout","message":"the request body arrived too slowly"}` + "\n"
)

func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptFrom(r.Context())
	var o outcome
	if a != nil {
		a.failed()
		o = a.outcome()
	}
	status, body := http.StatusBadGateway, bodyUnavailable
	switch {
	case o.clientBody != nil:
		status, body = http.StatusBadRequest, bodyBadRequest
		if clientTooSlow(o.clientBody) {
			status, body = http.StatusRequestTimeout, bodyTooSlow
		}
		p.log.DebugContext(r.Context(), "client request body failed", "method", r.Method, "path", r.URL.Path, "err", o.clientBody)
	case o.timeout != nil:
		status, body = http.StatusGatewayTimeout, bodyTimeout
		p.log.WarnContext(r.Context(), "upstream request timed out",
			"method", r.Method, "path", r.URL.Path, "phase", o.timeout.Phase, "after", o.timeout.After)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away, so this says nothing about the upstream. The
		// 502 below is still written: the resource was not delivered, and
		// code wrapping this handler should see a failure status.
		p.log.DebugContext(r.Context(), "client canceled proxied request",
			"method", r.Method, "path", r.URL.Path)
	default:
		p.log.ErrorContext(r.Context(), "upstream request failed",
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeBody(w, status, body)
}

// refuse answers a request the breaker turned away: 503 with Retry-After, at once.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var hinted interface{ RetryAfter() time.Duration }
	wait := time.Second
	if errors.As(err, &hinted) {
		wait = hinted.RetryAfter()
	}
	p.log.DebugContext(r.Context(), "upstream breaker refused a request", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", RetryAfterSeconds(wait))
	writeBody(w, http.StatusServiceUnavailable, bodyOpen)
}

// RetryAfterSeconds formats a wait as a Retry-After value: whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

func writeBody(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// NewTransport returns the transport New uses by default: keep-alive
// connections with a large idle pool per host, because the gateway sends
// all traffic to a single upstream. Environment proxy settings are ignored.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

var _ http.Handler = (*Proxy)(nil)
