package config

import (
	"testing"
	"time"
)

func TestResilienceDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Server; s.IdleTimeout != time.Minute || s.IdleTimeout > 2*time.Minute || s.ReadHeaderTimeout != 10*time.Second ||
		s.BodyReadTimeout != 30*time.Second || s.MinBodyRate != 1024 || s.WriteTimeout != 30*time.Second || s.MaxConnections != 0 {
		t.Errorf("server defaults %+v", s)
	}
	if u := c.UpstreamTimeouts; u.Connect != 10*time.Second || u.Header != 30*time.Second || u.Idle != time.Minute || u.Total != 0 {
		t.Errorf("upstream timeouts %+v", u)
	}
	if b := c.UpstreamBreaker; !b.Enabled || b.Failures != 5 || b.OpenFor != 5*time.Second || b.MaxOpenFor != time.Minute {
		t.Errorf("breaker %+v", b)
	}
	if c.Settlement.InclusionMargin != 6*time.Second {
		t.Errorf("inclusion margin %s", c.Settlement.InclusionMargin)
	}
}

// TestBreakerCanBeTurnedOff: a disabled breaker's other keys are not checked.
func TestBreakerCanBeTurnedOff(t *testing.T) {
	c, err := Parse([]byte(minimal+"upstreamBreaker:\n  enabled: false\n  failures: 0\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamBreaker.Enabled {
		t.Fatal("still enabled")
	}
	// Setting one key keeps the others' defaults, enabled included.
	c, err = Parse([]byte(minimal+"upstreamBreaker:\n  failures: 2\n"), "")
	if err != nil || !c.UpstreamBreaker.Enabled || c.UpstreamBreaker.OpenFor != DefaultBreakerOpenFor {
		t.Fatalf("%+v %v", c.UpstreamBreaker, err)
	}
}

func TestRouteTimeoutsOverGlobal(t *testing.T) {
	c, err := Parse([]byte(minimal+"routes:\n  - path: /v1/slow\n    price: \"1\"\n    timeouts:\n      header: 2m\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Routes[0].Timeouts.Over(c.UpstreamTimeouts)
	want := UpstreamTimeouts{Connect: 10 * time.Second, Header: 2 * time.Minute, Idle: time.Minute}
	if got != want {
		t.Fatalf("route timeouts %+v, want %+v", got, want)
	}
}
