package config

import "time"

// Idempotency configures the x402 payment-identifier extension: a caller that retries a payment
// with the same identifier gets the first answer, kept in the database, instead of a second
// charge.
type Idempotency struct {
	// Required refuses payments without an identifier (400) and says so in every 402.
	Required bool `yaml:"required"`
	// TTL is how long an answer is kept (1m..720h, default 24h).
	TTL time.Duration `yaml:"ttl"`
	// MaxResponseBytes caps a kept response body (1 KiB..32 MiB, default 1 MiB); a larger one is
	// served but not kept, and a retry is told so (409 response_not_kept).
	MaxResponseBytes int64 `yaml:"maxResponseBytes"`
}

// Defaults and bounds of Idempotency.
const (
	DefaultIdempotencyTTL      = 24 * time.Hour
	DefaultIdempotencyMaxBytes = 1 << 20
	MinIdempotencyTTL          = time.Minute
	MaxIdempotencyTTL          = 720 * time.Hour
	MinIdempotencyMaxBytes     = 1 << 10
	MaxIdempotencyMaxBytes     = 32 << 20 // the largest response the paywall buffers
)

func (c *Config) validateIdempotency(v *validator) {
	if t := c.Idempotency.TTL; t < MinIdempotencyTTL || t > MaxIdempotencyTTL {
		v.failf("idempotency.ttl", "%s is outside %s..%s", t, MinIdempotencyTTL, MaxIdempotencyTTL)
	}
	if n := c.Idempotency.MaxResponseBytes; n < MinIdempotencyMaxBytes || n > MaxIdempotencyMaxBytes {
		v.failf("idempotency.maxResponseBytes", "%d is outside %d..%d", n, MinIdempotencyMaxBytes, MaxIdempotencyMaxBytes)
	}
}
