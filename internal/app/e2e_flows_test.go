package app

import (
	"math/big"
	"strings"
	"testing"

	"github.com/payper/payper/config"
	"github.com/payper/payper/paywall"
)

// TestExactSettlementFlows pays with exact in each synchronous settlement flow, set globally:
// the money moves exactly once for an answer below 400; an answer of 400 or more is charged
// nothing, except in before, which takes the payment first and says so in the 402; event
// streams arrive event by event in every flow but after-body, which buffers as the reference
// does.
func TestExactSettlementFlows(t *testing.T) {
	up := newStreamUpstream(t)
	e := startEnv(t, up.server.URL)
	flows := []struct {
		flow    string
		payer   int
		streams bool
	}{
		{config.FlowBefore, 2, true},
		{config.FlowAfterHeaders, 3, true},
		{config.FlowAfterBody, 4, false},
		{config.FlowAuto, 5, true},
	}
	for _, f := range flows {
		t.Run(f.flow, func(t *testing.T) {
			_, base := e.startGatewayFull(func(c *config.Config) {
				streamRoutes(c, up.server.URL)
				c.Settlement.Flow = f.flow
			})
			payer := account(f.payer)
			events := base + "/s/events?n=5&every=" + streamEvery.String()
			offer := challenge(t, "GET", events)
			if upfront := offer.Extra[paywall.ExtraPaymentFlow] == paywall.PaymentFlowUpfront; upfront != (f.flow == config.FlowBefore) {
				t.Fatalf("offer extra %+v: only before declares the upfront flow", offer.Extra)
			}

			before := e.balance(payer.Address)
			run := readEvents(t, up, events, encode(t, signPayment(t, payer.Key, offer)))
			if f.streams {
				checkEventByEvent(t, f.flow, run, streamEvents, streamLag)
			} else if run.status != 200 || len(run.arrived) != streamEvents || run.arrived[0].Before(run.sent[streamEvents-1]) {
				t.Fatalf("after-body: status %d, %d events, must arrive once the stream ended", run.status, len(run.arrived))
			}
			if run.settlement == nil || !run.settlement.Success || len(run.settlement.Transaction) != 66 {
				t.Fatalf("settlement %+v", run.settlement)
			}
			if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
				t.Fatalf("payer spent %s for one stream, want 1000", spent)
			}

			// An upstream error: charged only where the payment is taken first.
			before = e.balance(payer.Address)
			failing := base + "/s/status?code=500"
			r := attempt(t, "GET", failing, encode(t, signPayment(t, payer.Key, challenge(t, "GET", failing))))
			taken := f.flow == config.FlowBefore
			if r.status != 500 || !strings.Contains(r.body, "status 500") || (r.settlement != nil) != taken {
				t.Fatalf("upstream 500: %d %s, settlement %+v", r.status, r.body, r.settlement)
			}
			if spent := new(big.Int).Sub(before, e.balance(payer.Address)).Int64(); spent != priceIf(taken) {
				t.Fatalf("payer spent %d for a 500, want %d", spent, priceIf(taken))
			}
			t.Logf("%s: first event after %s", f.flow, run.firstEvent())
		})
	}
}
