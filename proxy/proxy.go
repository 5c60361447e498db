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
	// Logger receives upstream failures. Nil discards them.
	Logger *slog.Logger
}

// Proxy is an http.Handler that forwards every request to the upstream.
type Proxy struct {
	rp  *httputil.ReverseProxy
	log *slog.Logger
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
	p := &Proxy{log: log}
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
		Transport: transport,
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
	// Let a streaming request body keep flowing while the response streams
	// back. HTTP/2 connections are always full duplex, hence the ignored error.
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.rp.ServeHTTP(w, r)
}

// upstreamUnavailable is the whole body of a 502; causes stay in the log
// because they can reveal internal addresses.
const upstreamUnavailable = `{"error":"upstream unavailable"}` + "\n"

func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away, so this says nothing about the upstream. The
		// 502 below is still written: the resource was not delivered, and
		// code wrapping this handler should see a failure status.
		p.log.DebugContext(r.Context(), "client canceled proxied request",
			"method", r.Method, "path", r.URL.Path)
	} else {
		p.log.ErrorContext(r.Context(), "upstream request failed",
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte(upstreamUnavailable))
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
