package evm

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// signedAuthorization is a payer's EIP-3009 authorization of amount to payTo on the test token.
func signedAuthorization(t *testing.T, payer devkeys.Account, payTo common.Address, amount int64) *exact.Payload {
	t.Helper()
	offer := exact.Offer{Network: "eip155:1337", Asset: tokenAddr, Name: "USD Coin", Version: "2", PayTo: payTo, MaxTimeoutSeconds: 60}
	p, err := (&exact.Signer{Key: payer.Key}).CreatePayload(offer.Requirements(big.NewInt(amount)), nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := exact.ParsePayload(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestPaymentStateInOneCall: a payment's nonce state and the payer's balance come from one
// eth_call through Multicall3, and agree with the two reads made apart, before and after the
// authorization is used; on a chain without Multicall3 they come from one JSON-RPC batch.
func TestPaymentStateInOneCall(t *testing.T) {
	proxy, dial := faultyChain(t)
	ctx := context.Background()
	c := dial(Options{SettlerKey: devkeys.DevAccounts(3)[2].Key})
	payer := devkeys.DevAccounts(2)[1]
	pl := signedAuthorization(t, payer, common.Address{0xd1}, 5)
	a := pl.Authorization

	check := func(step string, wantUsed bool, wantBalance int64) {
		t.Helper()
		calls := proxy.Calls("eth_call")
		used, balance, err := c.PaymentState(ctx, tokenAddr, a.From, a.Nonce)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if n := proxy.Calls("eth_call") - calls; n != 1 && !c.noMulticall.Load() {
			t.Errorf("%s: %d eth_calls, want one", step, n)
		}
		if used != wantUsed || balance.Int64() != wantBalance {
			t.Errorf("%s: used %v balance %s, want %v %d", step, used, balance, wantUsed, wantBalance)
		}
		apartUsed, _ := c.AuthorizationState(ctx, tokenAddr, a.From, a.Nonce)
		apartBalance, _ := c.BalanceOf(ctx, tokenAddr, a.From)
		if apartUsed != used || apartBalance.Cmp(balance) != 0 {
			t.Errorf("%s: read apart: used %v balance %s", step, apartUsed, apartBalance)
		}
	}
	check("unused", false, 1_000_000)
	data, err := exact.TransferWithAuthorizationData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, pl.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.sendAndWait(ctx, tokenAddr, data); err != nil {
		t.Fatal(err)
	}
	check("used", true, 1_000_000-5)

	// Multicall3's address answers nothing, as on a chain without it: a batch, from then on.
	proxy.Add(faultrpc.Fault{Method: "eth_call", If: callsTo(multicall3.Address), Do: faultrpc.Result("0x")})
	batches := proxy.Calls("eth_call")
	check("without Multicall3", true, 1_000_000-5)
	check("without Multicall3 again", true, 1_000_000-5)
	if !c.noMulticall.Load() {
		t.Fatal("the client did not notice the chain has no Multicall3")
	}
	// Two reads each time (batched), the first time after the one multicall that found nothing;
	// plus the two reads apart each time.
	if n := proxy.Calls("eth_call") - batches; n != 1+2+2+2+2 {
		t.Errorf("%d eth_calls, want 9", n)
	}
}

// callsTo matches an eth_call to addr.
func callsTo(addr common.Address) func(faultrpc.Call) bool {
	return func(c faultrpc.Call) bool {
		return strings.Contains(strings.ToLower(string(c.Params)), strings.ToLower(addr.Hex()))
	}
}

// TestPaymentStateOfANonToken: an asset address that is no EIP-3009 token is an error, as reading
// it apart is, through Multicall3 and through a batch alike.
func TestPaymentStateOfANonToken(t *testing.T) {
	_, dial := faultyChain(t)
	c := dial(Options{})
	for _, notAToken := range []common.Address{{0xee}, multicall3.Address} { // no code; a contract without those functions
		for _, batch := range []bool{false, true} {
			c.noMulticall.Store(batch)
			if _, _, err := c.PaymentState(context.Background(), notAToken, common.Address{1}, common.Hash{2}); err == nil {
				t.Errorf("%s, batch %v: no error", notAToken, batch)
			}
			if _, err := c.AuthorizationState(context.Background(), notAToken, common.Address{1}, common.Hash{2}); err == nil {
				t.Errorf("%s read apart: no error", notAToken)
			}
		}
	}
}

// TestVerifyReadsTheChainOnce: verifying an exact payment against the client costs one chain
// call, for a payment that passes and for one whose nonce is used.
func TestVerifyReadsTheChainOnce(t *testing.T) {
	chain := startChain(t)
	proxy, err := faultrpc.Start(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	ctx := context.Background()
	// The verifier's client alone goes through the proxy; the settler's follows the chain's head
	// on its own.
	c, err := Dial(ctx, proxy.URL(), big.NewInt(1337), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	settler, err := Dial(ctx, chain.RPCURL(), big.NewInt(1337), Options{SettlerKey: devkeys.DevAccounts(3)[2].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer settler.Close()
	payer := devkeys.DevAccounts(2)[1]
	offer := exact.Offer{Network: "eip155:1337", Asset: tokenAddr, Name: "USD Coin", Version: "2", PayTo: common.Address{0xd2}, MaxTimeoutSeconds: 60}
	req := offer.Requirements(big.NewInt(7))
	p, err := (&exact.Signer{Key: payer.Key}).CreatePayload(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &exact.Verifier{Chain: c}
	verify := func() error {
		t.Helper()
		before := countCalls(proxy)
		_, err := v.Verify(ctx, req, p)
		if calls := countCalls(proxy).since(before); len(calls) != 1 || calls["eth_call"] != 1 {
			t.Errorf("verification made %s, want one eth_call", calls)
		}
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	pl, _ := exact.ParsePayload(p.Payload)
	a := pl.Authorization
	data, _ := exact.TransferWithAuthorizationData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, pl.Signature)
	if _, err := settler.sendAndWait(ctx, tokenAddr, data); err != nil {
		t.Fatal(err)
	}
	if err := verify(); !errors.Is(err, x402.ReasonExactNonceAlreadyUsed) {
		t.Fatalf("used nonce: %v", err)
	}
}
