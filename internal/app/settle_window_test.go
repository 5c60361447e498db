package app

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// TestExpiringAuthorizationIsNeverBroadcast: the upstream takes so long that, when its answer
// arrives, the authorization has less than the inclusion margin left. The gateway must release
// it and send nothing: no transaction from the settler (its nonce does not move), the payer's
// balance untouched, the payer told valid_before. The upstream's slowness is simulated by moving
// the gateway's clock while the upstream handles the request.
func TestExpiringAuthorizationIsNeverBroadcast(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	clock := newFakeClock()
	gw, url := e.startGatewayHooked(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.UpstreamBreaker.Enabled = false
	}, hooks{now: clock.Now}, nil)
	url += "/v1/quote"
	settler := common.HexToAddress(e.dev.Info.Settler)
	payer := account(6)

	// Control: with time standing still the same setup settles, and the settler's nonce moves.
	nonce := e.pendingNonce(settler)
	if r := send(t, "GET", url, encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))); r.status != 200 {
		t.Fatalf("control payment: %d %s", r.status, r.body)
	}
	if e.pendingNonce(settler) != nonce+1 {
		t.Fatal("the control payment sent no transaction: this test could not see one")
	}

	req := challenge(t, "GET", url)
	p := signPayment(t, payer.Key, req) // valid for maxTimeoutSeconds (60 s) from now
	nonce, balance := e.pendingNonce(settler), e.balance(payer.Address)
	margin := gw.cfg.Settlement.InclusionMargin
	pl, err := exact.ParsePayload(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	// While the upstream works, time moves to a second inside the margin before validBefore
	// (set from the authorization itself, not from when the clock was made).
	validBefore := time.Unix(pl.Authorization.ValidBefore.Int64(), 0)
	up.during = func() { clock.Set(validBefore.Add(-margin + time.Second)) }
	r := send(t, "GET", url, encode(t, p))
	up.during = nil
	if r.status != 402 || r.settlement == nil || r.settlement.Success ||
		r.settlement.ErrorReason != string(x402.ReasonExactValidBefore) {
		t.Fatalf("expiring authorization: %d %+v %s", r.status, r.settlement, r.body)
	}
	if got := e.pendingNonce(settler); got != nonce {
		t.Fatalf("the settler sent %d transaction(s) for an authorization about to expire", got-nonce)
	}
	if e.balance(payer.Address).Cmp(balance) != 0 {
		t.Fatal("the payer's balance moved")
	}
	payments, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex(), Limit: 1})
	if err != nil || len(payments) != 1 || payments[0].Status != store.StatusReleased ||
		payments[0].ErrorReason != string(x402.ReasonExactValidBefore) {
		t.Fatalf("the payment must be released, not left reserved: %+v %v", payments, err)
	}
}
