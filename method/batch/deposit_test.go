package batchmethod

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// slowDepositChain is an escrow whose deposits take long enough for other requests to be served
// meanwhile: mining runs the during hook first. The real escrow's deposits are tested end to end
// in internal/app; this pins down the interleaving, which a real chain cannot.
type slowDepositChain struct {
	mu     sync.Mutex // guards state
	state  store.ChannelChainState
	during func()
}

func (c *slowDepositChain) ChannelState(context.Context, common.Hash) (store.ChannelChainState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, nil
}

func (c *slowDepositChain) BalanceOf(context.Context, common.Address, common.Address) (*big.Int, error) {
	return big.NewInt(1e12), nil
}

func (c *slowDepositChain) Deposit(_ context.Context, _ batch.ChannelConfig, d batch.Deposit) (common.Hash, error) {
	if c.during != nil {
		c.during()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.Balance = new(big.Int).Add(c.state.Balance, d.Amount)
	c.state.Block++
	return common.HexToHash("0x99"), nil
}

// newTestOffer returns an offer whose receiver authorizer is a fresh key, its verifier, that key,
// and a signer for a fresh payer.
func newTestOffer(t *testing.T) (batch.Offer, *batch.Verifier, *ecdsa.PrivateKey, *batch.Signer) {
	t.Helper()
	receiverKey, _ := crypto.GenerateKey()
	payerKey, _ := crypto.GenerateKey()
	offer := batch.Offer{Network: "eip155:1337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		Name: "USD Coin", Version: "2", PayTo: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
		ReceiverAuthorizer: crypto.PubkeyToAddress(receiverKey.PublicKey), WithdrawDelay: 900, MaxTimeoutSeconds: 60}
	verifier, err := batch.NewVerifier(batch.VerifierConfig{Network: offer.Network})
	if err != nil {
		t.Fatal(err)
	}
	return offer, verifier, receiverKey, &batch.Signer{Key: payerKey}
}

// TestDepositRacingVouchersNeverLowersTheCharge: a top-up judged at charged total 100 is mined
// while three vouchers (110, 120, 130) are served on other requests. Its own voucher (110) was
// verified against 100, so it must not be charged on top of 130 (nor reset the total to 110).
func TestDepositRacingVouchersNeverLowersTheCharge(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	offer, verifier, _, signer := newTestOffer(t)
	chain := &slowDepositChain{state: store.ChannelChainState{Balance: big.NewInt(1000), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 5}}
	m := &Method{Offer: offer, Verifier: verifier, Store: st, Chain: chain}
	price := big.NewInt(10)
	req := offer.Requirements(price)
	pay := func(p *batch.Payload, err error) error {
		if err != nil {
			return err
		}
		pp, err := batch.PaymentPayload(req, nil, p)
		if err != nil {
			return err
		}
		c, err := m.Authorize(ctx, req, pp, paywall.RequestInfo{Method: "GET", Route: "/v1/quote"})
		if err == nil {
			_, err = c.Complete(ctx)
		}
		return err
	}
	for cum := int64(10); cum <= 100; cum += 10 {
		if err := pay(signer.VoucherPayload(req, big.NewInt(cum))); err != nil {
			t.Fatalf("voucher %d: %v", cum, err)
		}
	}
	chain.during = func() {
		chain.during = nil
		for cum := int64(110); cum <= 130; cum += 10 {
			if err := pay(signer.VoucherPayload(req, big.NewInt(cum))); err != nil {
				t.Errorf("voucher %d served while the deposit mined: %v", cum, err)
			}
		}
	}
	deposit, err := signer.DepositPayload(req, big.NewInt(500), big.NewInt(110))
	if err != nil {
		t.Fatal(err)
	}
	err = pay(deposit, nil)
	if reason, _ := x402.ReasonOf(err); reason != x402.ReasonBatchChannelBusy {
		t.Fatalf("deposit whose voucher went stale while mining: %v, want %s", err, x402.ReasonBatchChannelBusy)
	}
	got, err := st.GetChannel(ctx, verifier.ChannelID(deposit.ChannelConfig).Hex())
	if err != nil {
		t.Fatal(err)
	}
	// 13 requests served at 10 each; the deposit itself counts (balance 1500) but its request
	// was refused.
	if got.Charged.Int64() != 130 || got.SignedMax.Int64() != 130 || got.Balance.Int64() != 1500 {
		t.Fatalf("channel after the race: charged %s, signedMax %s, balance %s; want 130, 130, 1500", got.Charged, got.SignedMax, got.Balance)
	}
}

// watcherRacingCharges is a store whose next charge finds the chain watcher has just recorded a
// newer block of the channel (the deposit's own event), so the charge's chain version is stale.
type watcherRacingCharges struct {
	Store
	sync func()
}

func (s *watcherRacingCharges) ChargeChannel(ctx context.Context, c store.ChannelCharge) error {
	if s.sync != nil {
		sync := s.sync
		s.sync = nil
		sync()
	}
	return s.Store.ChargeChannel(ctx, c)
}

// TestDepositChargeSurvivesAWatcherSync: the watcher records the deposit's event between the
// deposit request's own record of it and its charge. Nothing else happened to the channel, so
// the deposit's voucher is charged on the fresh record instead of the request being refused as
// busy with the payer's money already in the escrow.
func TestDepositChargeSurvivesAWatcherSync(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	offer, verifier, _, signer := newTestOffer(t)
	chain := &slowDepositChain{state: store.ChannelChainState{Balance: big.NewInt(0), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 5}}
	racing := &watcherRacingCharges{Store: st}
	m := &Method{Offer: offer, Verifier: verifier, Store: racing, Chain: chain}
	req := offer.Requirements(big.NewInt(10))
	deposit, err := signer.DepositPayload(req, big.NewInt(500), big.NewInt(10))
	if err != nil {
		t.Fatal(err)
	}
	id := verifier.ChannelID(deposit.ChannelConfig).Hex()
	racing.sync = func() {
		s := chain.state
		s.Block++
		if err := st.SyncChannel(ctx, id, s); err != nil {
			t.Error(err)
		}
	}
	pp, err := batch.PaymentPayload(req, nil, deposit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Authorize(ctx, req, pp, paywall.RequestInfo{Method: "GET", Route: "/v1/quote"})
	if err != nil {
		t.Fatalf("deposit raced by a watcher sync: %v", err)
	}
	if _, err := c.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetChannel(ctx, id); got.Charged.Int64() != 10 || got.Balance.Int64() != 500 {
		t.Fatalf("channel %+v, want 10 charged of 500", got)
	}
}
