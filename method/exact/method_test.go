package exactmethod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// fakeLedger records what settlement did to a payment.
type fakeLedger struct {
	released, failed, submitted, settled []string
	reserved                             []store.Payment
}

func (l *fakeLedger) ReservePayment(_ context.Context, p *store.Payment) (int64, error) {
	l.reserved = append(l.reserved, *p)
	return int64(len(l.reserved)), nil
}
func (l *fakeLedger) MarkFirstSubmitted(ctx context.Context, id int64, h string) error {
	return l.MarkSubmitted(ctx, id, h)
}
func (l *fakeLedger) MarkSubmitted(_ context.Context, _ int64, h string) error {
	l.submitted = append(l.submitted, h)
	return nil
}
func (l *fakeLedger) MarkSettled(_ context.Context, _ int64, h string) error {
	l.settled = append(l.settled, h)
	return nil
}
func (l *fakeLedger) MarkFailed(_ context.Context, _ int64, r string) error {
	l.failed = append(l.failed, r)
	return nil
}
func (l *fakeLedger) ReleasePayment(_ context.Context, _ int64, r string) error {
	l.released = append(l.released, r)
	return nil
}

// fakeChain mines whatever it is sent at once, and counts the sends.
type fakeChain struct {
	sent int
	data []byte // of the last send
}

func (c *fakeChain) BalanceOf(context.Context, common.Address, common.Address) (*big.Int, error) {
	return big.NewInt(1e9), nil
}
func (c *fakeChain) AuthorizationState(context.Context, common.Address, common.Address, common.Hash) (bool, error) {
	return false, nil
}
func (c *fakeChain) Send(_ context.Context, _ common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	c.sent++
	c.data = data
	h := common.HexToHash("0x01")
	return h, onSigned(h)
}
func (c *fakeChain) WaitMined(_ context.Context, h common.Hash) (*types.Receipt, error) {
	return &types.Receipt{TxHash: h, Status: types.ReceiptStatusSuccessful}, nil
}

// TestCompleteChecksTheWindowAgain: right before sending, an authorization must still have the
// inclusion margin left; one that has not is released and nothing is sent.
func TestCompleteChecksTheWindowAgain(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		left, margin time.Duration
		send         bool
	}{
		{10 * time.Second, 6 * time.Second, true},
		{7 * time.Second, 6 * time.Second, true},
		// Exactly the margin left is enough, as it is at verification and for the reference,
		// whose settle verifies again right before it sends.
		{6 * time.Second, 6 * time.Second, true},
		{5 * time.Second, 6 * time.Second, false},
		{2 * time.Second, 6 * time.Second, false},
		{time.Second, 0, true},
		{0, 0, false}, // expired: validBefore must be in the future
		{-time.Minute, 0, false},
	}
	for _, tc := range cases {
		ledger, chain := &fakeLedger{}, &fakeChain{}
		e := &Method{Ledger: ledger, Chain: chain, InclusionMargin: tc.margin, Now: func() time.Time { return now }}
		c := &charge{e: e, id: 1, network: "eip155:1337", v: &exact.Verified{
			Payload: exact.Payload{Signature: make([]byte, 65), Authorization: exact.Authorization{
				Value: big.NewInt(1000), ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(now.Add(tc.left).Unix()),
			}},
		}}
		s, err := c.Complete(context.Background())
		if tc.send {
			if err != nil || chain.sent != 1 || s == nil || !s.Success {
				t.Errorf("%s left, margin %s: %v, sent %d; want it settled", tc.left, tc.margin, err, chain.sent)
			}
			continue
		}
		if reason, _ := x402.ReasonOf(err); reason != x402.ReasonExactValidBefore {
			t.Errorf("%s left, margin %s: %v, want %s", tc.left, tc.margin, err, x402.ReasonExactValidBefore)
		}
		if chain.sent != 0 || len(ledger.submitted) != 0 {
			t.Errorf("%s left, margin %s: a transaction was sent", tc.left, tc.margin)
		}
		if len(ledger.released) != 1 || ledger.released[0] != string(x402.ReasonExactValidBefore) {
			t.Errorf("%s left, margin %s: reservation not released: %+v", tc.left, tc.margin, ledger)
		}
	}
}

// downChain is a chain whose every RPC endpoint's breaker is open.
type downChain struct{ fakeChain }

func (c *downChain) Refusing() (time.Duration, bool) { return 4 * time.Second, true }

// TestPaymentsTurnedAwayWhileTheChainIsDown: while every RPC endpoint's breaker is open, an exact
// payment is refused as unavailable at once, with the breaker's wait for Retry-After: nothing is
// verified (the verifier, without a chain it could read, would panic) and nothing reserved.
func TestPaymentsTurnedAwayWhileTheChainIsDown(t *testing.T) {
	ledger := &fakeLedger{}
	e := &Method{Ledger: ledger, Chain: &downChain{}}
	_, err := e.Authorize(context.Background(), x402.PaymentRequirements{}, &x402.PaymentPayload{}, paywall.RequestInfo{})
	var hint interface{ RetryAfter() time.Duration }
	if !errors.Is(err, paywall.ErrUnavailable) || !errors.As(err, &hint) || hint.RetryAfter() != 4*time.Second {
		t.Fatalf("payment while the chain is down: %v; want unavailable, retry after 4s", err)
	}
}

// TestAuthorizeRecordsAnyValidBefore: an authorization may stay valid up to 2^256-1 seconds, as
// the token and the reference allow; its record says until when in a time both stores keep,
// never a wrapped-around date in the past that would make a pending settlement look expired.
func TestAuthorizeRecordsAnyValidBefore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	huge := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	cases := []struct {
		validBefore *big.Int
		want        time.Time
	}{
		{big.NewInt(now.Unix() + 60), now.Add(time.Minute)},
		{big.NewInt(253_402_300_799), time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)},
		{big.NewInt(253_402_300_800), time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)},
		{new(big.Int).Lsh(big.NewInt(1), 63), time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)},
		{huge, time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)},
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	offer := exact.Offer{Network: "eip155:1337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		Name: "USD Coin", Version: "2", PayTo: common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"), MaxTimeoutSeconds: 60}
	domain, err := offer.Domain()
	if err != nil {
		t.Fatal(err)
	}
	req := offer.Requirements(big.NewInt(1000))
	for i, tc := range cases {
		a := exact.Authorization{From: crypto.PubkeyToAddress(key.PublicKey), To: offer.PayTo, Value: big.NewInt(1000),
			ValidAfter: big.NewInt(0), ValidBefore: tc.validBefore, Nonce: common.BigToHash(big.NewInt(int64(i)))}
		sig, err := evmsig.SignDigest(key, a.Digest(domain.Separator()))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(exact.Payload{Signature: sig, Authorization: a})
		if err != nil {
			t.Fatal(err)
		}
		ledger, chain := &fakeLedger{}, &fakeChain{}
		e := &Method{Offer: offer, Ledger: ledger, Chain: chain, Verifier: &exact.Verifier{Chain: chain, Now: func() time.Time { return now }}}
		p := &x402.PaymentPayload{X402Version: x402.Version, Accepted: req, Payload: raw}
		if _, err := e.Authorize(context.Background(), req, p, paywall.RequestInfo{}); err != nil {
			t.Fatalf("validBefore %s: %v", tc.validBefore, err)
		}
		if got := ledger.reserved[0].ValidBefore; !got.Equal(tc.want) {
			t.Errorf("validBefore %s recorded as %s, want %s", tc.validBefore, got, tc.want)
		}
	}
}

// TestCompleteSendsTheSignatureAsVerified: a key's signature goes out in the (v, r, s) form every
// EIP-3009 token has, v made 27 or 28 as tokens require; a payer contract's goes out byte for
// byte in the (bytes signature) form, since the contract judges those very bytes.
func TestCompleteSendsTheSignatureAsVerified(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := exact.Authorization{From: common.HexToAddress("0xa11e"), To: common.HexToAddress("0xb0b"), Value: big.NewInt(1000),
		ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(now.Unix() + 60), Nonce: common.HexToHash("0x01")}
	keySig := append(bytes.Repeat([]byte{0x11}, 64), 1) // v as parity
	contractSig := bytes.Repeat([]byte{0x22}, 300)
	normalized := append(bytes.Repeat([]byte{0x11}, 64), 28)
	wantKey, err := exact.TransferWithAuthorizationData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, normalized)
	if err != nil {
		t.Fatal(err)
	}
	wantContract, err := exact.TransferWithAuthorizationBytesData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, contractSig)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		sig        []byte
		byContract bool
		want       []byte
	}{
		"key":      {keySig, false, wantKey},
		"contract": {contractSig, true, wantContract},
	} {
		chain := &fakeChain{}
		e := &Method{Ledger: &fakeLedger{}, Chain: chain, Now: func() time.Time { return now }}
		c := &charge{e: e, id: 1, network: "eip155:1337", v: &exact.Verified{
			Payload: exact.Payload{Signature: tc.sig, Authorization: a}, SignedByContract: tc.byContract,
		}}
		if _, err := c.Complete(context.Background()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(chain.data, tc.want) {
			t.Errorf("%s: sent %x\nwant %x", name, chain.data, tc.want)
		}
	}
}
