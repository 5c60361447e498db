package app

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/payper/payper/internal/httpguard"
)

// maxHeaderBytes bounds a request's headers; larger ones get 431.
const maxHeaderBytes = 64 << 10

// newServer builds the gateway's HTTP server over ln, bounded as server.* configures: idle
// keep-alive connections are closed after idleTimeout, and at maxConnections the oldest idle
// ones give way to new clients; bodies and writes have deadlines that move with progress.
func (g *Gateway) newServer(ln net.Listener) (*http.Server, net.Listener) {
	sc := g.cfg.Server
	maxConns := sc.MaxConnections
	fdLimit, _ := httpguard.OpenFileLimit() // raises the soft limit to the hard one if it is lower
	if maxConns == 0 {
		maxConns = httpguard.DefaultMaxConnections()
	}
	g.log.Info("serving", "addr", ln.Addr().String(), "max_connections", maxConns, "open_file_limit", fdLimit,
		"idle_timeout", sc.IdleTimeout)
	limiter := httpguard.NewLimiter(ln, maxConns, g.log.With("component", "server"))
	g.limiter.Store(limiter)
	deadlines := httpguard.Deadlines{BodyIdle: sc.BodyReadTimeout, MinBodyRate: sc.MinBodyRate, Write: sc.WriteTimeout}
	srv := &http.Server{
		Handler:           deadlines.Wrap(g.handler),
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         limiter.ConnState,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return srv, limiter
}
