package app

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// asyncGateway starts a gateway whose routes all settle in the async flow, with the given
// bounds (atomic units), and whose queue only runs when the test works it.
func asyncGateway(e *env, upstream string, perPayer, total string) (*Gateway, string) {
	return e.startGatewayHooked(func(c *config.Config) {
		c.Upstream = upstream
		c.Settlement.Flow = config.FlowAsync
		c.Settlement.Async.MaxUnsettledPerPayer, c.Settlement.Async.MaxUnsettled = perPayer, total
	}, hooks{queueOff: true}, nil)
}

// payQuote pays /v1/quote with a fresh exact authorization of key and reports whether the
// answer came before the payment settled (queued) or after (a transaction).
func payQuote(t *testing.T, url string, key *ecdsa.PrivateKey) (queued bool) {
	t.Helper()
	r := send(t, "GET", url, encode(t, signPayment(t, key, challenge(t, "GET", url))))
	s := r.settlement
	if r.status != 200 || s == nil || !s.Success {
		t.Fatalf("paid request: %d %s %+v", r.status, r.body, s)
	}
	queued = s.Extra[paywall.ExtraSettlement] == paywall.SettlementQueued
	if queued == (s.Transaction != "") {
		t.Fatalf("settlement %+v: queued xor settled", s)
	}
	return queued
}

func exposure(t *testing.T, gw *Gateway, payer string) store.Exposure {
	t.Helper()
	x, err := gw.Store().AsyncExposure(context.Background(), payer)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestAsyncBoundsAreEnforced: async payments serve before they settle only up to the bound per
// payer and in total; beyond, a payment is settled synchronously before its answer. The queue
// then settles every deferred payment once, and the money moved is exactly what was served.
func TestAsyncBoundsAreEnforced(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	gw, base := asyncGateway(e, up.server.URL, "2000", "3000")
	url := base + "/v1/quote"
	a, b := account(2), account(3)
	beforeA, beforeB := e.balance(a.Address), e.balance(b.Address)

	for i, want := range []bool{true, true, false} { // the third would take A past 2000
		if got := payQuote(t, url, a.Key); got != want {
			t.Fatalf("payer A, payment %d: queued %v, want %v", i+1, got, want)
		}
	}
	for i, want := range []bool{true, false} { // the second would take everybody past 3000
		if got := payQuote(t, url, b.Key); got != want {
			t.Fatalf("payer B, payment %d: queued %v, want %v", i+1, got, want)
		}
	}
	if x := exposure(t, gw, ""); x.Unsettled.Int64() != 3000 {
		t.Fatalf("unsettled in total %s, want 3000", x.Unsettled)
	}
	if up.calls.Load() != 5 {
		t.Fatalf("upstream called %d times for 5 paid requests", up.calls.Load())
	}

	if n, err := gw.queue.RunOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("the queue settled %d payments (%v), want 3", n, err)
	}
	waitSettled(t, gw, a.Address, 3)
	waitSettled(t, gw, b.Address, 2)
	if spent := new(big.Int).Sub(beforeA, e.balance(a.Address)); spent.Int64() != 3000 {
		t.Fatalf("payer A spent %s for 3 answers", spent)
	}
	if spent := new(big.Int).Sub(beforeB, e.balance(b.Address)); spent.Int64() != 2000 {
		t.Fatalf("payer B spent %s for 2 answers", spent)
	}
	if x := exposure(t, gw, ""); x.Unsettled.Sign() != 0 {
		t.Fatalf("unsettled in total %s once the queue drained", x.Unsettled)
	}
	if n, _ := gw.queue.RunOnce(context.Background()); n != 0 {
		t.Fatalf("the queue settled %d more after it drained", n)
	}
}

// TestFailedAsyncSettlementBlocksThePayer: a payer who moves its money away after an async
// answer is served leaves a failed settlement; it is then blocked from async: its next payment
// is settled before its answer, however far it is from the bounds.
func TestFailedAsyncSettlementBlocksThePayer(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	gw, base := asyncGateway(e, up.server.URL, "5000", "10000")
	url := base + "/v1/quote"
	payer, sink := account(4), account(9)
	if !payQuote(t, url, payer.Key) {
		t.Fatal("the first async payment was not deferred")
	}
	moveTokens(t, e, payer.Key, sink.Address, e.balance(payer.Address))

	if _, err := gw.queue.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ps, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if err != nil || len(ps) != 1 || ps[0].Status != store.StatusFailed || ps[0].ErrorReason != string(x402.ReasonExactInsufficientBalance) {
		t.Fatalf("payments %+v %v: the settlement must have failed for the balance", ps, err)
	}
	x := exposure(t, gw, payer.Address.Hex())
	if x.Unsettled.Sign() != 0 || x.BlockedAt.IsZero() {
		t.Fatalf("exposure %+v: nothing unsettled, and the payer blocked", x)
	}

	moveTokens(t, e, sink.Key, payer.Address, big.NewInt(1_000_000))
	before := e.balance(payer.Address)
	if payQuote(t, url, payer.Key) {
		t.Fatal("a blocked payer's payment was deferred")
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
		t.Fatalf("the blocked payer spent %s, want 1000 before its answer", spent)
	}
	// Another payer is not affected.
	if !payQuote(t, url, account(5).Key) {
		t.Fatal("another payer's payment was not deferred")
	}
}

// moveTokens sends amount of the dev token from key's account to to.
func moveTokens(t *testing.T, e *env, key *ecdsa.PrivateKey, to common.Address, amount *big.Int) {
	t.Helper()
	c, err := dialAs(e, key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hash, err := c.Send(context.Background(), DevTokenAddress, testusdc.NewTestUSDC().PackTransfer(to, amount), nil)
	if err == nil {
		_, err = c.WaitMined(context.Background(), hash)
	}
	if err != nil {
		t.Fatalf("move tokens: %v", err)
	}
}
