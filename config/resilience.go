package config

import (
	"fmt"
	"time"
)

// Defaults of the keys that bound the gateway's connections, its upstream and its settlements.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyReadTimeout   = 30 * time.Second
	DefaultMinBodyRate       = 1024 // bytes per second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second

	DefaultUpstreamConnectTimeout = 10 * time.Second
	DefaultUpstreamHeaderTimeout  = 30 * time.Second
	DefaultUpstreamIdleTimeout    = 60 * time.Second

	DefaultBreakerFailures   = 5
	DefaultBreakerOpenFor    = 5 * time.Second
	DefaultBreakerMaxOpenFor = time.Minute

	DefaultInclusionMargin = 6 * time.Second
)

// Server bounds what clients can hold of the gateway's HTTP server.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// BodyReadTimeout bounds each wait for more of a request body, and is the grace period
	// before MinBodyRate applies.
	BodyReadTimeout time.Duration `yaml:"bodyReadTimeout"`
	// MinBodyRate is the average pace, in bytes per second, a request body must keep after
	// BodyReadTimeout; 0 checks only the gaps.
	MinBodyRate int64 `yaml:"minBodyRate"`
	// WriteTimeout bounds each write to a client; every write moves it forward, so only a client
	// that stopped reading is cut, never a stream that keeps sending.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout closes a keep-alive connection that waits this long for its next request.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxConnections caps open client connections; at the cap, idle ones are closed, oldest
	// first, to admit new clients. 0 derives it from the open-file limit.
	MaxConnections int `yaml:"maxConnections"`
}

// UpstreamTimeouts bound each exchange with the upstream. In routes[].timeouts a field left out
// (or 0) keeps the global value; globally, 0 sets no bound.
type UpstreamTimeouts struct {
	// Connect bounds getting a connection (pool wait, dial, TLS).
	Connect time.Duration `yaml:"connect,omitempty"`
	// Header bounds the wait for the response headers, restarted while the upstream accepts
	// more of the request body.
	Header time.Duration `yaml:"header,omitempty"`
	// Idle bounds each wait for more of the response body.
	Idle time.Duration `yaml:"idle,omitempty"`
	// Total bounds the whole exchange, body included; leave it 0 for long-lived streams.
	Total time.Duration `yaml:"total,omitempty"`
}

// Over returns t with every field t leaves at zero taken from base.
func (t UpstreamTimeouts) Over(base UpstreamTimeouts) UpstreamTimeouts {
	pick := func(own, inherited time.Duration) time.Duration {
		if own != 0 {
			return own
		}
		return inherited
	}
	return UpstreamTimeouts{
		Connect: pick(t.Connect, base.Connect), Header: pick(t.Header, base.Header),
		Idle: pick(t.Idle, base.Idle), Total: pick(t.Total, base.Total),
	}
}

// UpstreamBreaker configures the circuit breaker in front of the upstream: after Failures
// consecutive failures (timeouts, unreachable, or a 502, 503 or 504 from it) priced and free
// routes answer 503 with Retry-After for OpenFor, then one probe request passes; each failed
// probe doubles the wait up to MaxOpenFor.
type UpstreamBreaker struct {
	Enabled    bool          `yaml:"enabled"`
	Failures   int           `yaml:"failures"`
	OpenFor    time.Duration `yaml:"openFor"`
	MaxOpenFor time.Duration `yaml:"maxOpenFor"`
}

func defaultServer() Server {
	return Server{
		ReadHeaderTimeout: DefaultReadHeaderTimeout, BodyReadTimeout: DefaultBodyReadTimeout,
		MinBodyRate: DefaultMinBodyRate, WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout,
	}
}

func defaultUpstreamTimeouts() UpstreamTimeouts {
	return UpstreamTimeouts{Connect: DefaultUpstreamConnectTimeout, Header: DefaultUpstreamHeaderTimeout, Idle: DefaultUpstreamIdleTimeout}
}

func defaultUpstreamBreaker() UpstreamBreaker {
	return UpstreamBreaker{Enabled: true, Failures: DefaultBreakerFailures, OpenFor: DefaultBreakerOpenFor, MaxOpenFor: DefaultBreakerMaxOpenFor}
}

// Bounds that Validate enforces on these keys.
const (
	MaxServerTimeout   = time.Hour
	MaxUpstreamTimeout = 24 * time.Hour
	MinMaxConnections  = 16
	MaxMaxConnections  = 10_000_000
	MaxBreakerFailures = 1000
	MinBreakerOpenFor  = 100 * time.Millisecond
)

func (c *Config) validateResilience(v *validator) {
	s := c.Server
	durationBetween(v, "server.readHeaderTimeout", s.ReadHeaderTimeout, time.Second, MaxServerTimeout)
	durationBetween(v, "server.bodyReadTimeout", s.BodyReadTimeout, time.Second, MaxServerTimeout)
	durationBetween(v, "server.writeTimeout", s.WriteTimeout, time.Second, MaxServerTimeout)
	durationBetween(v, "server.idleTimeout", s.IdleTimeout, time.Second, MaxServerTimeout)
	if s.MinBodyRate < 0 {
		v.failf("server.minBodyRate", "%d is negative", s.MinBodyRate)
	}
	if s.MaxConnections != 0 {
		v.between("server.maxConnections", s.MaxConnections, MinMaxConnections, MaxMaxConnections)
	}
	validateTimeouts(v, "upstreamTimeouts", c.UpstreamTimeouts)
	for i, r := range c.Routes {
		validateTimeouts(v, fmt.Sprintf("routes[%d].timeouts", i), r.Timeouts)
	}
	if b := c.UpstreamBreaker; b.Enabled {
		v.between("upstreamBreaker.failures", b.Failures, 1, MaxBreakerFailures)
		durationBetween(v, "upstreamBreaker.openFor", b.OpenFor, MinBreakerOpenFor, time.Hour)
		durationBetween(v, "upstreamBreaker.maxOpenFor", b.MaxOpenFor, max(b.OpenFor, MinBreakerOpenFor), 24*time.Hour)
	}
	// Against maxTimeoutSeconds only when that is valid itself, so one mistake is reported once.
	margin, limit := c.Settlement.InclusionMargin, time.Duration(MaxMaxTimeoutSeconds)*time.Second
	if c.MaxTimeoutSeconds >= MinMaxTimeoutSeconds && c.MaxTimeoutSeconds <= MaxMaxTimeoutSeconds {
		limit = time.Duration(c.MaxTimeoutSeconds) * time.Second
	}
	if margin < 0 || margin >= limit {
		v.failf("settlement.inclusionMargin", "%s must be at least 0s and shorter than maxTimeoutSeconds (%s)", margin, limit)
	}
}

func validateTimeouts(v *validator, field string, t UpstreamTimeouts) {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"connect", t.Connect}, {"header", t.Header}, {"idle", t.Idle}, {"total", t.Total}} {
		if f.d < 0 || f.d > MaxUpstreamTimeout {
			v.failf(field+"."+f.name, "%s is outside 0s..%s", f.d, MaxUpstreamTimeout)
		}
	}
}

func durationBetween(v *validator, field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.failf(field, "%s is outside %s..%s", d, lo, hi)
	}
}
