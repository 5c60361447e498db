package store

import (
	"context"
	"time"
)

// LeaseStore lets one replica at a time run a job, such as a claim round: two claim
// transactions for the same vouchers would waste gas, and their nonces would collide.
type LeaseStore interface {
	// AcquireLease gives holder the lease name for ttl from now, or extends it when holder has it
	// already. It reports false when another holder has it and its time has not run out. Time
	// is each replica's own clock, so clocks should agree to well within ttl.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease ends holder's lease early; releasing a lease one does not hold does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}
