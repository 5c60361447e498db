// Package storetest is the conformance suite every store.Store backend
// runs from its own tests: replay protection under concurrency and across
// replicas, the payment state machine, queries, durability across reopen,
// failing closed once the store is gone, the responses kept for x402
// payment identifiers, and the async flow's queue and bounds.
//
// Import it only from _test.go files.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// Config is what the suite asks of each store it opens.
type Config struct {
	// Now must become the store's clock.
	Now func() time.Time
}

// Opener opens a new, independent handle (its own connections) on one
// database. Calling it twice gives two handles on the same data, as two
// replicas would have; it may be called from several goroutines at once.
// The suite closes every store it opens.
type Opener func(ctx context.Context, cfg Config) (store.Store, error)

// NewDatabase creates a fresh, empty database for one subtest, arranges its
// removal with t.Cleanup, and returns an Opener for it.
type NewDatabase func(t *testing.T) Opener

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, newDatabase NewDatabase) {
	tests := []struct {
		name string
		fn   func(*testing.T, *harness)
	}{
		{"ReserveRoundTrip", testReserveRoundTrip},
		{"ReserveRejectsInvalid", testReserveRejectsInvalid},
		{"DuplicateReservation", testDuplicateReservation},
		{"ConcurrentReservations", testConcurrentReservations},
		{"TwoHandlesRace", testTwoHandlesRace},
		{"ConcurrentOpen", testConcurrentOpen},
		{"ReleaseFreesKey", testReleaseFreesKey},
		{"Transitions", testTransitions},
		{"TransitionArguments", testTransitionArguments},
		{"UnknownID", testUnknownID},
		{"FindPayment", testFindPayment},
		{"ListPayments", testListPayments},
		{"ListPaymentsDefaultLimit", testListPaymentsDefaultLimit},
		{"UnfinishedPayments", testUnfinishedPayments},
		{"RecentSettlements", testRecentSettlements},
		{"SurvivesReopen", testSurvivesReopen},
		{"ClosedStoreIsUnavailable", testClosedStoreIsUnavailable},
		{"CanceledContext", testCanceledContext},
		{"ChannelRoundTrip", testChannelRoundTrip},
		{"ChannelCharge", testChannelCharge},
		{"InFlightCharges", testInFlightCharges},
		{"InFlightChargesExpire", testInFlightChargesExpire},
		{"ConcurrentInFlightCharges", testConcurrentInFlightCharges},
		{"Leases", testLeases},
		{"ChannelRefundHold", testChannelRefundHold},
		{"ConcurrentChannelCharges", testConcurrentChannelCharges},
		{"ChannelClaimsAndList", testChannelClaimsAndList},
		{"ChannelsSurviveReopen", testChannelsSurviveReopen},
		{"IdempotencyRoundTrip", testIdempotencyRoundTrip},
		{"IdempotencyUpdateRules", testIdempotencyUpdateRules},
		{"IdempotencyLeaseAndTTL", testIdempotencyLeaseAndTTL},
		{"IdempotencyReleaseAndPurge", testIdempotencyReleaseAndPurge},
		{"IdempotencyRace", testIdempotencyRace},
		{"AsyncLifecycle", testAsyncLifecycle},
		{"AsyncBoundsRace", testAsyncBoundsRace},
		{"AsyncConcurrentLifecycle", testAsyncConcurrentLifecycle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{open: newDatabase(t), clock: newClock()}
			tc.fn(t, h)
		})
	}
}

// harness carries one subtest's database and clock.
type harness struct {
	open  Opener
	clock *clock

	mu       sync.Mutex
	inFlight map[string]store.InFlightCharge // by id, as chargeInFlight made them
}

// store opens a handle that is closed when the test ends.
func (h *harness) store(t *testing.T) store.Store {
	t.Helper()
	s, err := h.open(t.Context(), Config{Now: h.clock.Now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// clock is a settable time source shared by every handle of a subtest.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	// Nanoseconds on purpose: stores keep microseconds.
	return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stored is how the store must report t: UTC, microsecond precision.
func stored(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
