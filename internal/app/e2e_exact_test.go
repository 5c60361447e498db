package app

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/config"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

func TestPaidRequestMovesExactlyThePrice(t *testing.T) {
	e := startEnv(t, "")
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(2)
	beforePayer, beforePayTo := e.balance(payer.Address), e.balance(e.payTo)

	req := challenge(t, "GET", url)
	if req.Scheme != "exact" || req.Network != "eip155:1337" || req.Amount != "1000" ||
		!strings.EqualFold(req.Asset, DevTokenAddress.Hex()) || req.Extra["name"] != "USD Coin" || req.Extra["version"] != "2" {
		t.Fatalf("requirement %+v", req)
	}
	r := send(t, "GET", url, encode(t, signPayment(t, payer.Key, req)))
	if r.status != 200 {
		t.Fatalf("paid request: %d %s", r.status, r.body)
	}
	var quote map[string]string
	if err := json.Unmarshal([]byte(r.body), &quote); err != nil || quote["payer"] != payer.Address.Hex() {
		t.Fatalf("upstream body %s (the upstream must see the verified payer)", r.body)
	}
	s := r.settlement
	if s == nil || !s.Success || s.Network != "eip155:1337" || !strings.EqualFold(s.Payer, payer.Address.Hex()) || len(s.Transaction) != 66 {
		t.Fatalf("settlement %+v", s)
	}
	receipt, err := e.chain.WaitMined(context.Background(), common.HexToHash(s.Transaction))
	if err != nil || receipt.Status != 1 {
		t.Fatalf("settlement tx: %v", err)
	}
	price := big.NewInt(1000)
	if got := new(big.Int).Sub(beforePayer, e.balance(payer.Address)); got.Cmp(price) != 0 {
		t.Fatalf("payer paid %s, want %s", got, price)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), beforePayTo); got.Cmp(price) != 0 {
		t.Fatalf("payTo received %s, want %s", got, price)
	}
	payments, err := e.dev.Gateway.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if err != nil || len(payments) != 1 {
		t.Fatalf("payments %v %v", payments, err)
	}
	p := payments[0]
	if p.Status != store.StatusSettled || !strings.EqualFold(p.TxHash, s.Transaction) || p.Amount.Cmp(price) != 0 || p.Route != "/v1/quote" || p.Method != "GET" {
		t.Fatalf("record %+v", p)
	}

	// The free route passes through without any payment header.
	free := send(t, "GET", e.dev.Info.GatewayURL+"/v1/health", "")
	if free.status != 200 || free.header.Get(x402.HeaderPaymentRequired) != "" || !strings.Contains(free.body, "ok") {
		t.Fatalf("free route: %d %s", free.status, free.body)
	}
}

func TestRejectedPayments(t *testing.T) {
	e := startEnv(t, "")
	url := e.dev.Info.GatewayURL + "/v1/quote"
	req := challenge(t, "GET", url)
	payer, other := account(3), account(4)
	domain := exact.Domain{Name: "USD Coin", Version: "2", ChainID: big.NewInt(1337), VerifyingContract: DevTokenAddress}
	poor, _ := crypto.GenerateKey()
	before := e.balance(payer.Address)

	// resign edits the authorization of a fresh valid payment and signs it again with key.
	resign := func(key *ecdsa.PrivateKey, edit func(*exact.Authorization)) string {
		p := signPayment(t, payer.Key, req)
		pl, _ := exact.ParsePayload(p.Payload)
		edit(&pl.Authorization)
		pl.Signature, _ = evmsig.SignDigest(key, pl.Authorization.Digest(domain.Separator()))
		p.Payload, _ = json.Marshal(pl)
		return encode(t, p)
	}
	now := func() int64 { return time.Now().Unix() }
	cases := []struct {
		name   string
		header string
		reason x402.Reason
	}{
		{"wrong signer", resign(other.Key, func(*exact.Authorization) {}), x402.ReasonExactSignature},
		{"recipient", resign(payer.Key, func(a *exact.Authorization) { a.To = other.Address }), x402.ReasonExactRecipientMismatch},
		{"value", resign(payer.Key, func(a *exact.Authorization) { a.Value = big.NewInt(999) }), x402.ReasonExactValueMismatch},
		{"valid before", resign(payer.Key, func(a *exact.Authorization) { a.ValidBefore = big.NewInt(now() + 2) }), x402.ReasonExactValidBefore},
		{"valid after", resign(payer.Key, func(a *exact.Authorization) { a.ValidAfter = big.NewInt(now() + 600) }), x402.ReasonExactValidAfter},
		{"insufficient balance", encode(t, signPayment(t, poor, req)), x402.ReasonExactInsufficientBalance},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, "GET", url, tc.header)
			if r.status != 402 || r.required == nil {
				t.Fatalf("status %d, body %s", r.status, r.body)
			}
			if !strings.HasPrefix(r.required.Error, string(tc.reason)) {
				t.Fatalf("error %q, want reason %s", r.required.Error, tc.reason)
			}
			if len(r.required.Accepts) != 2 || r.header.Get("Cache-Control") != "no-store" {
				t.Fatal("a rejection must carry a fresh challenge")
			}
		})
	}
	if e.balance(payer.Address).Cmp(before) != 0 {
		t.Fatal("a rejected payment moved money")
	}

	t.Run("offer mismatch", func(t *testing.T) {
		p := signPayment(t, payer.Key, req)
		p.Accepted.PayTo = other.Address.Hex()
		r := send(t, "GET", url, encode(t, p))
		if r.status != 402 || r.required.Error != "No matching payment requirements" {
			t.Fatalf("%d %+v", r.status, r.required)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, h := range []string{"not base64!", "e30=", strings.Repeat("A", 10000)} {
			r := send(t, "GET", url, h)
			if r.status != 400 || !strings.Contains(r.body, `"error"`) {
				t.Fatalf("%q: status %d", h[:min(len(h), 12)], r.status)
			}
		}
	})
}

func TestReplayIsServedOnce(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(5)
	before := e.balance(payer.Address)
	header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))

	if r := send(t, "GET", url, header); r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := send(t, "GET", url, header)
	if r.status != 402 || !strings.HasPrefix(r.required.Error, string(x402.ReasonExactNonceAlreadyUsed)) {
		t.Fatalf("replay: %d %+v", r.status, r.required)
	}

	// The same fresh header sent concurrently: served and settled exactly once.
	concurrent := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))
	const n = 16
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set(x402.HeaderPaymentSignature, concurrent)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case 200:
			ok++
		case 402:
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent copies were served, want exactly 1", ok)
	}
	if got := up.calls.Load(); got != 2 {
		t.Fatalf("upstream called %d times, want 2", got)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(2000)) != 0 {
		t.Fatalf("payer spent %s, want exactly 2000", spent)
	}
}

func TestUpstreamErrorSettlesNothing(t *testing.T) {
	up := newCountingUpstream(t)
	up.status.Store(500)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(6)
	before := e.balance(payer.Address)
	header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))

	r := send(t, "GET", url, header)
	if r.status != 500 || r.settlement != nil {
		t.Fatalf("upstream 500: got %d, settlement %+v", r.status, r.settlement)
	}
	if e.balance(payer.Address).Cmp(before) != 0 {
		t.Fatal("payment settled although the upstream failed")
	}
	// The authorization was not consumed: once the upstream recovers, the same payment works.
	up.status.Store(0)
	if r := send(t, "GET", url, header); r.status != 200 || r.settlement == nil || !r.settlement.Success {
		t.Fatalf("retry after recovery: %d %s", r.status, r.body)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(1000)) != 0 {
		t.Fatalf("spent %s, want 1000", spent)
	}
}

func TestRPCDownFailsClosed(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	rpc := newFaultyRPC(t, e.dev.Info.RPCURL)
	gateway := e.startGateway(func(c *config.Config) {
		c.RPCURL = rpc.server.URL
		c.Upstream = up.server.URL
	})
	url := gateway + "/v1/quote"
	payer := account(7)
	before := e.balance(payer.Address)
	header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))

	rpc.down.Store(true)
	r := send(t, "GET", url, header)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || strings.Contains(r.body, rpc.server.URL) {
		t.Fatalf("RPC down: %d %s", r.status, r.body)
	}
	if up.calls.Load() != 0 {
		t.Fatal("served while the chain could not be read")
	}
	rpc.down.Store(false)
	// The chain's circuit breaker may have opened during the outage: until its cool-down ends and
	// a probe passes, the gateway still answers 503 with Retry-After. Then the same payment works.
	r = send(t, "GET", url, header)
	for deadline := time.Now().Add(15 * time.Second); r.status == http.StatusServiceUnavailable && time.Now().Before(deadline); r = send(t, "GET", url, header) {
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After: %s", r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.status != 200 {
		t.Fatalf("after recovery the same payment must work: %d %s", r.status, r.body)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(1000)) != 0 {
		t.Fatalf("spent %s, want 1000", spent)
	}
}

// TestPayerDrainsBalanceBeforeSettlement: the payer empties its account while the upstream runs;
// settlement fails and the response is withheld.
func TestPayerDrainsBalanceBeforeSettlement(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(8)
	sink := account(9).Address
	drainer, err := dialAs(e, payer.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer drainer.Close()
	up.during = func() {
		all := e.balance(payer.Address)
		data := testusdc.NewTestUSDC().PackTransfer(sink, all)
		hash, err := drainer.Send(context.Background(), DevTokenAddress, data, nil)
		if err == nil {
			_, err = drainer.WaitMined(context.Background(), hash)
		}
		if err != nil {
			t.Errorf("drain: %v", err)
		}
	}
	header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))
	r := send(t, "GET", url, header)
	if r.status != 402 || strings.Contains(r.body, "payer") && strings.Contains(r.body, "/v1/quote") {
		t.Fatalf("status %d body %s: the response must be withheld", r.status, r.body)
	}
	s := r.settlement
	if s == nil || s.Success || s.Transaction != "" || s.ErrorReason != string(x402.ReasonExactInsufficientBalance) {
		t.Fatalf("settlement %+v", s)
	}
	payments, _ := e.dev.Gateway.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if len(payments) != 1 || payments[0].Status != store.StatusReleased && payments[0].Status != store.StatusFailed {
		t.Fatalf("record %+v", payments)
	}
}

func TestGatewayRefusesWrongChainOrMissingToken(t *testing.T) {
	e := startEnv(t, "")
	base, err := devConfig(DevOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	noToken := *base
	noToken.Asset.Address = "0x000000000000000000000000000000000000dEaD"
	if _, err := NewGateway(context.Background(), &noToken, nil); err == nil || !strings.Contains(err.Error(), "no contract code") {
		t.Fatalf("missing token: %v", err)
	}
	otherChain := *base
	otherChain.Network = "eip155:8453"
	if _, err := NewGateway(context.Background(), &otherChain, nil); err == nil || !strings.Contains(err.Error(), "chain id mismatch") {
		t.Fatalf("wrong chain: %v", err)
	}
}
