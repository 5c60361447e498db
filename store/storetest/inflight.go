package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// chargeInFlight is charge(c, by) recorded as in flight under id, expiring in a minute; the
// harness remembers it for finish.
func (h *harness) chargeInFlight(c *store.Channel, by int64, id string) store.ChannelCharge {
	ch := charge(c, by)
	ch.InFlight = &store.InFlightCharge{ID: id, Amount: big.NewInt(by), Expires: h.clock.Now().Add(time.Minute)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight == nil {
		h.inFlight = map[string]store.InFlightCharge{}
	}
	h.inFlight[id] = *ch.InFlight
	return ch
}

// finish makes the in-flight charge named id final.
func (h *harness) finish(s store.Store, channelID, id string) error {
	h.mu.Lock()
	f := h.inFlight[id]
	h.mu.Unlock()
	return s.FinishChannelCharge(context.Background(), channelID, f)
}

// wantCharged checks a channel's charged total and its in-flight part, on a single read and on a
// listing.
func wantCharged(t *testing.T, s store.Store, id string, charged, inFlight int64) *store.Channel {
	t.Helper()
	c := mustGetChannel(t, s, id)
	if c.Charged.Int64() != charged || c.InFlight == nil || c.InFlight.Int64() != inFlight {
		t.Fatalf("channel charged %v, in flight %v; want %d, %d", c.Charged, c.InFlight, charged, inFlight)
	}
	list, err := s.ListChannels(t.Context(), store.ChannelFilter{ByID: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.ID == c.ID && (l.InFlight == nil || l.InFlight.Cmp(c.InFlight) != 0) {
			t.Fatalf("listing shows %v in flight, a read %v", l.InFlight, c.InFlight)
		}
	}
	return c
}

// testInFlightCharges: an in-flight charge counts in the charged total at once and in InFlight
// until it is finished (final) or released (its amount leaves the charged total, whatever was
// charged after it staying). Each ends once.
func testInFlightCharges(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	c := newChannel(1)
	mustCreateChannel(t, s, c)
	c = mustGetChannel(t, s, c.ID)
	if c.InFlight == nil || c.InFlight.Sign() != 0 {
		t.Fatalf("a new channel has %v in flight", c.InFlight)
	}
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 1000, "a")); err != nil {
		t.Fatal(err)
	}
	c = wantCharged(t, s, c.ID, 1000, 1000)
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 1000, "b")); err != nil {
		t.Fatal(err)
	}
	c = wantCharged(t, s, c.ID, 2000, 2000)

	// A charge that loses its compare-and-set leaves no in-flight row behind.
	old := *c
	old.Charged = big.NewInt(1000)
	stale := h.chargeInFlight(&old, 1000, "stale")
	if err := s.ChargeChannel(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale charge: %v", err)
	}
	if err := s.ReleaseChannelCharge(ctx, c.ID, "stale"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused charge left an in-flight row: %v", err)
	}

	// The first request is answered: final. Its finish counts once.
	if err := h.finish(s, c.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(s, c.ID, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second finish: %v", err)
	}
	wantCharged(t, s, c.ID, 2000, 1000)
	// The second fails: given back, once; the voucher stays the best one signed.
	if err := s.ReleaseChannelCharge(ctx, c.ID, "b"); err != nil {
		t.Fatal(err)
	}
	for _, again := range []func() error{
		func() error { return s.ReleaseChannelCharge(ctx, c.ID, "b") },
		func() error { return h.finish(s, c.ID, "b") },
	} {
		if err := again(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a released charge ended again: %v", err)
		}
	}
	c = wantCharged(t, s, c.ID, 1000, 0)
	if c.SignedMax.Int64() != 2000 {
		t.Fatalf("release must keep the voucher: signed max %s", c.SignedMax)
	}

	// Out of order: the earlier of two in-flight charges fails, the later one stands.
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 1000, "c")); err != nil {
		t.Fatal(err)
	}
	c = mustGetChannel(t, s, c.ID)
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 500, "d")); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseChannelCharge(ctx, c.ID, "c"); err != nil {
		t.Fatal(err)
	}
	wantCharged(t, s, c.ID, 1500, 500)
	if err := h.finish(s, c.ID, "d"); err != nil {
		t.Fatal(err)
	}
	c = wantCharged(t, s, c.ID, 1500, 0)

	// What an in-flight charge may be.
	for name, bad := range map[string]store.ChannelCharge{
		"no id":   h.chargeInFlight(c, 100, ""),
		"long id": h.chargeInFlight(c, 100, fmt.Sprintf("%065d", 1)),
		"amount too low": func() store.ChannelCharge {
			ch := h.chargeInFlight(c, 100, "x")
			ch.InFlight.Amount = big.NewInt(99)
			return ch
		}(),
		"no amount": func() store.ChannelCharge { ch := h.chargeInFlight(c, 100, "y"); ch.InFlight.Amount = nil; return ch }(),
	} {
		if err := s.ChargeChannel(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantCharged(t, s, c.ID, 1500, 0)
}

// testInFlightChargesExpire: an in-flight charge nobody ended by its expiry (its process died)
// is given back by ReleaseExpiredCharges; one not yet expired stays, and a request finishing an
// expired charge learns it may not be served.
func testInFlightChargesExpire(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	c := newChannel(1)
	mustCreateChannel(t, s, c)
	c = mustGetChannel(t, s, c.ID)
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 1000, "old")); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(30 * time.Second)
	c = mustGetChannel(t, s, c.ID)
	if err := s.ChargeChannel(ctx, h.chargeInFlight(c, 700, "young")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReleaseExpiredCharges(ctx, h.clock.Now()); err != nil || n != 0 {
		t.Fatalf("nothing has expired yet: released %d, %v", n, err)
	}
	h.clock.Advance(30 * time.Second)
	if n, err := s.ReleaseExpiredCharges(ctx, h.clock.Now()); err != nil || n != 1 {
		t.Fatalf("released %d, %v; want the old charge", n, err)
	}
	wantCharged(t, s, c.ID, 700, 700)
	if err := h.finish(s, c.ID, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finishing an expired charge: %v", err)
	}
	if err := h.finish(s, c.ID, "young"); err != nil {
		t.Fatal(err)
	}
	wantCharged(t, s, c.ID, 700, 0)
}

// testConcurrentInFlightCharges: requests on one channel, on two handles, charge in flight and
// then half of them finish and half fail, in any interleaving. The channel ends charged exactly
// what the finished ones paid, with nothing in flight.
func testConcurrentInFlightCharges(t *testing.T, h *harness) {
	replicas := []store.Store{h.store(t), h.store(t)}
	c := newChannel(1)
	c.Balance = big.NewInt(1_000_000)
	mustCreateChannel(t, replicas[0], c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	finished := int64(0)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(s store.Store, i int) {
			defer wg.Done()
			id := fmt.Sprintf("req-%d", i)
			for {
				cur, err := s.GetChannel(t.Context(), c.ID)
				if err != nil {
					t.Error(err)
					return
				}
				err = s.ChargeChannel(t.Context(), h.chargeInFlight(cur, 100, id))
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				break
			}
			if i%2 == 0 {
				if err := s.ReleaseChannelCharge(t.Context(), c.ID, id); err != nil {
					t.Error(err)
				}
				return
			}
			if err := h.finish(s, c.ID, id); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			finished += 100
			mu.Unlock()
		}(replicas[i%2], i)
	}
	wg.Wait()
	wantCharged(t, replicas[1], c.ID, finished, 0)
}
