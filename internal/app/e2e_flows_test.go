package app

import (
	"context"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/store"
)

// TestExactSettlementFlows pays with exact in each settlement flow, set globally: the money
// moves exactly once for an answer below 400 (in async, once the queue settled it); an answer
// of 400 or more is charged nothing, except in before, which takes the payment first and says
// so in the 402; event streams arrive event by event in every flow but after-body, which
// buffers as the reference does.
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
		{config.FlowAsync, 6, true},
	}
	for _, f := range flows {
		t.Run(f.flow, func(t *testing.T) {
			gw, base := e.startGatewayFull(func(c *config.Config) {
				streamRoutes(c, up.server.URL)
				c.Settlement.Flow = f.flow
			})
			payer := account(f.payer)
			events := base + "/s/events?n=" + strconv.Itoa(streamEvents) + "&every=" + streamEvery.String()
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
			async := f.flow == config.FlowAsync
			if s := run.settlement; s == nil || !s.Success || (len(s.Transaction) == 66) == async ||
				(s.Extra[paywall.ExtraSettlement] == paywall.SettlementQueued) != async {
				t.Fatalf("settlement %+v: only async answers before the payment settled, and says so", s)
			}
			if async {
				waitSettled(t, gw, payer.Address, 1)
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

// waitSettled waits until n payments of payer are settled and none is still reserved or
// submitted, and returns them all.
func waitSettled(t *testing.T, gw *Gateway, payer common.Address, n int) []store.Payment {
	t.Helper()
	return waitFor(t, 30*time.Second, func() []store.Payment {
		ps, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Hex()})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}, func(ps []store.Payment) bool {
		settled := 0
		for _, p := range ps {
			if !p.Status.Terminal() {
				return false
			}
			if p.Status == store.StatusSettled {
				settled++
			}
		}
		return settled == n
	})
}
