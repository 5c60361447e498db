package batchmethod

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// TestClaimerTakesOnlyFinalCharges: a charge whose request is still being served is left out of
// a claim (the rest of the channel is claimed); one left in flight by a process that died is
// given back once it expires, and never claimed.
func TestClaimerTakesOnlyFinalCharges(t *testing.T) {
	ctx := context.Background()
	f := newClaimFixture(t)
	id := f.channel(1, 10_000, 1000, false)
	now := time.Unix(1_900_000_000, 0)
	charges := map[string]store.InFlightCharge{}
	inFlight := func(name string, by int64) {
		got, err := f.st.GetChannel(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		to := new(big.Int).Add(got.Charged, big.NewInt(by))
		fl := store.InFlightCharge{ID: name, Amount: big.NewInt(by), Expires: now.Add(time.Minute)}
		charges[name] = fl
		err = f.st.ChargeChannel(ctx, store.ChannelCharge{ID: id, ExpectedCharged: got.Charged, ChainVersion: got.ChainVersion,
			Charged: to, SignedMax: to, Signature: "0x01", InFlight: &fl})
		if err != nil {
			t.Fatal(err)
		}
	}
	inFlight("served-later", 500)
	inFlight("never-answered", 300)
	chain := &recordingChain{}
	c := f.claimer(chain, 10)
	c.Now = func() time.Time { return now }
	if res, err := c.RunOnce(ctx); err != nil || res.Amount.Int64() != 1000 || chain.claims[0][0].TotalClaimed.Int64() != 1000 {
		t.Fatalf("claim with 800 in flight: %+v %v; want the final 1000", res, err)
	}
	if err := f.st.FinishChannelCharge(ctx, id, charges["served-later"]); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute) // "never-answered" expired: its process is gone
	if res, err := c.RunOnce(ctx); err != nil || res.Amount.Int64() != 500 || chain.claims[1][0].TotalClaimed.Int64() != 1500 {
		t.Fatalf("claim after one finished and one expired: %+v %v; want 500 more, 1500 in all", res, err)
	}
	ch, err := f.st.GetChannel(ctx, id)
	if err != nil || ch.Charged.Int64() != 1500 || ch.InFlight.Sign() != 0 || ch.Claimed.Int64() != 1500 {
		t.Fatalf("channel %+v %v; want charged = claimed = 1500, nothing in flight", ch, err)
	}
}
