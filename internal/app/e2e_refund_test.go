package app

import (
	"encoding/json"
	"math/big"
	"testing"
)

// TestChannelRefundIsNotAPaidRequest: a cooperative refund on the embedded chain pays the
// provider exactly what was charged and returns exactly the rest, and its request never reaches
// the upstream: it pays for nothing, so it gets the gateway's own answer. Afterwards the channel
// spends nothing more. The interleaving of a refund in flight with vouchers is pinned down in
// package channels (TestRefundInFlightHoldsTheFunds).
func TestChannelRefundIsNotAPaidRequest(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(6)
	p := newChannelPayer(t, url, payer.Key)
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	for _, cum := range []int64{2000, 3000} {
		if r := send(t, "GET", url, p.voucher(cum)); r.status != 200 {
			t.Fatalf("voucher %d: %d", cum, r.status)
		}
	}
	served := up.calls.Load()

	r := send(t, "GET", url, p.header(p.signer.RefundPayload(p.req, big.NewInt(3000), nil)))
	if r.status != 200 || r.settlement == nil || !r.settlement.Success || r.settlement.Amount != "7000" || r.settlement.Transaction == "" {
		t.Fatalf("refund: %d %+v %s", r.status, r.settlement, r.body)
	}
	var body struct{ ChannelID, Refunded string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Refunded != "7000" || body.ChannelID == "" {
		t.Fatalf("refund body %q: %v", r.body, err)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refund headers: %v", r.header)
	}
	if n := up.calls.Load(); n != served {
		t.Fatalf("the refund request reached the upstream (%d calls, was %d)", n, served)
	}
	if got := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); got.Int64() != 3000 {
		t.Fatalf("payer is out %s, want exactly the 3000 it spent", got)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 3000 {
		t.Fatalf("payTo received %s, want 3000", got)
	}
	if r := send(t, "GET", url, p.voucher(4000)); r.status != 402 {
		t.Fatalf("voucher after the refund: %d", r.status)
	}
	if n := up.calls.Load(); n != served {
		t.Fatalf("upstream called after the refund: %d calls, was %d", n, served)
	}
}
