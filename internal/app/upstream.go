package app

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/payper/payper/breaker"
	"github.com/payper/payper/config"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/pricing"
	"github.com/payper/payper/proxy"
	"github.com/payper/payper/x402"
)

// buildUpstream builds the path to the upstream: the proxy with its bounds and breaker, behind
// the middleware that gives each route its own bounds. The gate is the breaker for the paywall
// to ask before it looks at a payment, or nil when the breaker is off.
func (g *Gateway) buildUpstream(table *pricing.Table) (http.Handler, paywall.Gate, error) {
	cfg := g.cfg
	target, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: %w", err)
	}
	opts := proxy.Options{
		StripRequestHeaders: []string{x402.HeaderPaymentSignature, x402.HeaderPaymentV1},
		Timeouts:            proxyTimeouts(cfg.UpstreamTimeouts),
		Logger:              g.log.With("component", "proxy"),
	}
	var gate paywall.Gate
	if b := cfg.UpstreamBreaker; b.Enabled {
		g.breaker = breaker.New(breaker.Options{
			Name: "upstream", Failures: b.Failures, OpenFor: b.OpenFor, MaxOpenFor: b.MaxOpenFor,
			Now: g.now, Logger: g.log.With("component", "upstream-breaker"),
		})
		opts.Breaker, gate = g.breaker, g.breaker
	}
	px, err := proxy.New(target, opts)
	if err != nil {
		return nil, nil, err
	}
	return withRouteTimeouts(px, table, cfg), gate, nil
}

func proxyTimeouts(t config.UpstreamTimeouts) proxy.Timeouts {
	return proxy.Timeouts{Connect: t.Connect, Header: t.Header, Idle: t.Idle, Total: t.Total}
}

// withRouteTimeouts gives the requests of each route that sets routes[].timeouts those bounds,
// field by field over the global ones, through the request's context. It matches with the same
// table as the paywall, after the paywall made the path canonical.
func withRouteTimeouts(next http.Handler, table *pricing.Table, cfg *config.Config) http.Handler {
	perRoute := map[string]proxy.Timeouts{}
	for _, r := range cfg.Routes {
		if r.Timeouts != (config.UpstreamTimeouts{}) {
			perRoute[routeKey(r.Method, r.Path)] = proxyTimeouts(r.Timeouts.Over(cfg.UpstreamTimeouts))
		}
	}
	if len(perRoute) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route, err := table.Route(r.Method, r.URL.EscapedPath()); err == nil && route.Listed {
			if t, ok := perRoute[routeKey(route.Rule.Method, route.Rule.Path)]; ok {
				r = r.WithContext(proxy.WithTimeouts(r.Context(), t))
			}
		}
		next.ServeHTTP(w, r)
	})
}

func routeKey(method, path string) string { return method + " " + path }
