package batch

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

func TestVerifyDeposit(t *testing.T) {
	w := newWorld(t)
	valid := w.deposit(10000, 1000)
	withAuth := func(edit func(a *ERC3009Authorization, p *Payload), key *ecdsa.PrivateKey) *Payload {
		q := *valid
		d := *valid.Deposit
		a := *d.ERC3009
		d.ERC3009, q.Deposit = &a, &d
		edit(&a, &q)
		msg := ReceiveAuthorization{From: q.ChannelConfig.Payer, To: ERC3009CollectorAddress, Value: d.Amount, ValidAfter: a.ValidAfter, ValidBefore: a.ValidBefore, Nonce: DepositNonce(q.Voucher.ChannelID, a.Salt)}
		sep := Domain{Name: "USD Coin", Version: "2", ChainID: big.NewInt(1337), VerifyingContract: addrT}.Separator()
		a.Signature, _ = evmsig.SignDigest(key, msg.Digest(sep))
		return &q
	}
	minDeposit := w.terms
	minDeposit.MinDeposit = big.NewInt(20000)
	noDomain := w.terms
	noDomain.TokenName = ""
	otherDomain := w.terms
	otherDomain.TokenVersion = "1"
	smart := withAuth(func(*ERC3009Authorization, *Payload) {}, w.payer)
	smart.Deposit.ERC3009.Signature = make([]byte, 200)

	cases := []struct {
		name  string
		terms Terms
		snap  Snapshot
		p     *Payload
		want  error
	}{
		{"valid", w.terms, Snapshot{}, valid, nil},
		{"top-up", w.terms, snapshot(9000, 9500, 8000), w.deposit(10000, 10000), nil},
		{"voucher payload", w.terms, Snapshot{}, w.voucher(1000), x402.ReasonBatchPayloadType},
		{"below minimum", minDeposit, Snapshot{}, valid, x402.ReasonBatchDepositBelowMinDeposit},
		{"not first voucher", w.terms, snapshot(1000, 10000, 0), valid, x402.ReasonBatchCumulativeAmountMismatch},
		{"expired", w.terms, Snapshot{}, withAuth(func(a *ERC3009Authorization, _ *Payload) { a.ValidBefore = big.NewInt(testNow.Unix() + 5) }, w.payer), x402.ReasonBatchValidBefore},
		{"not yet valid", w.terms, Snapshot{}, withAuth(func(a *ERC3009Authorization, _ *Payload) { a.ValidAfter = big.NewInt(testNow.Unix() + 60) }, w.payer), x402.ReasonBatchValidAfter},
		{"authorization by another key", w.terms, Snapshot{}, withAuth(func(*ERC3009Authorization, *Payload) {}, w.other), x402.ReasonBatchReceiveAuthorizationSig},
		{"amount changed after signing", w.terms, Snapshot{}, withAuthThenEdit(withAuth(func(*ERC3009Authorization, *Payload) {}, w.payer), func(p *Payload) { p.Deposit.Amount = big.NewInt(20000) }), x402.ReasonBatchReceiveAuthorizationSig},
		{"salt changed after signing", w.terms, Snapshot{}, withAuthThenEdit(withAuth(func(*ERC3009Authorization, *Payload) {}, w.payer), func(p *Payload) { p.Deposit.ERC3009.Salt = common.HexToHash("0x02") }), x402.ReasonBatchReceiveAuthorizationSig},
		{"other token version", otherDomain, Snapshot{}, valid, x402.ReasonBatchReceiveAuthorizationSig},
		{"no token domain", noDomain, Snapshot{}, valid, x402.ReasonBatchMissingEIP712Domain},
		{"voucher above deposit", w.terms, Snapshot{}, w.deposit(10000, 10001), x402.ReasonBatchCumulativeAmountMismatch},
		{"top-up too small", w.terms, snapshot(9000, 9500, 0), w.deposit(100, 10000), x402.ReasonBatchCumulativeExceedsBalance},
		{"wrong voucher signer", w.terms, Snapshot{}, w.resign(valid, w.other, func(*Payload) {}), x402.ReasonBatchVoucherSignature},
		{"smart wallet authorization", w.terms, Snapshot{}, smart, ErrOnchainCheck},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.ver.VerifyDeposit(tc.terms, tc.snap, tc.p)
			if tc.want == nil {
				if err != nil || got.Payer != w.signer.Address() {
					t.Fatalf("valid deposit rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func withAuthThenEdit(p *Payload, edit func(*Payload)) *Payload {
	q := *p
	d := *p.Deposit
	a := *d.ERC3009
	d.ERC3009, q.Deposit = &a, &d
	edit(&q)
	return &q
}

func TestVerifyPermit2Deposit(t *testing.T) {
	w := newWorld(t)
	w.offer.AssetTransferMethod = TransferPermit2
	w.terms.AssetTransferMethod = TransferPermit2
	valid := w.deposit(10000, 1000)
	if valid.Deposit.Permit2 == nil {
		t.Fatal("signer did not use Permit2")
	}
	edit := func(f func(a *Permit2Authorization)) *Payload {
		q := *valid
		d := *valid.Deposit
		a := *d.Permit2
		d.Permit2, q.Deposit = &a, &d
		f(&a)
		a.Signature, _ = evmsig.SignDigest(w.payer, a.Transfer().Digest(Permit2Separator(big.NewInt(1337))))
		return &q
	}
	for name, tc := range map[string]struct {
		p    *Payload
		want error
	}{
		"valid":         {valid, nil},
		"spender":       {edit(func(a *Permit2Authorization) { a.Spender = ERC3009CollectorAddress }), x402.ReasonBatchPermit2InvalidSpender},
		"amount":        {edit(func(a *Permit2Authorization) { a.Amount = big.NewInt(9999) }), x402.ReasonBatchPermit2AmountMismatch},
		"token":         {edit(func(a *Permit2Authorization) { a.Token = addrA }), x402.ReasonBatchTokenMismatch},
		"witness":       {edit(func(a *Permit2Authorization) { a.ChannelID = common.HexToHash("0x09") }), x402.ReasonBatchChannelIDMismatch},
		"deadline":      {edit(func(a *Permit2Authorization) { a.Deadline = big.NewInt(testNow.Unix()) }), x402.ReasonBatchPermit2DeadlineExpired},
		"from":          {edit(func(a *Permit2Authorization) { a.From = addrB }), x402.ReasonBatchPermit2InvalidSignature},
		"nonce changed": {withNonce(valid, 1), x402.ReasonBatchPermit2InvalidSignature},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := w.ver.VerifyDeposit(w.terms, Snapshot{}, tc.p)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A server taking ERC-3009 only refuses the Permit2 deposit before any other check.
	erc3009Only := w.terms
	erc3009Only.AssetTransferMethod = ""
	if _, err := w.ver.VerifyDeposit(erc3009Only, Snapshot{}, valid); !errors.Is(err, x402.ReasonBatchERC3009AuthorizationRequired) {
		t.Fatalf("Permit2 deposit to an ERC-3009 server: %v", err)
	}
}

func withNonce(p *Payload, nonce int64) *Payload {
	q := *p
	d := *p.Deposit
	a := *d.Permit2
	a.Nonce = big.NewInt(nonce)
	d.Permit2, q.Deposit = &a, &d
	return &q
}

// TestOfferEnforcesMinDepositOnlyWhenAsked: by default the minimum is announced, as the reference
// server does; with EnforceMinDeposit a smaller deposit is refused.
func TestOfferEnforcesMinDepositOnlyWhenAsked(t *testing.T) {
	w := newWorld(t)
	w.offer.MinDeposit = big.NewInt(20_000)
	small := w.deposit(10_000, 1000)
	if _, err := w.ver.VerifyDeposit(w.offer.Terms(big.NewInt(1000)), Snapshot{}, small); err != nil {
		t.Fatalf("announced minimum refused a deposit: %v", err)
	}
	w.offer.EnforceMinDeposit = true
	if _, err := w.ver.VerifyDeposit(w.offer.Terms(big.NewInt(1000)), Snapshot{}, small); !errors.Is(err, x402.ReasonBatchDepositBelowMinDeposit) {
		t.Fatalf("enforced minimum: %v", err)
	}
	if _, err := w.ver.VerifyDeposit(w.offer.Terms(big.NewInt(1000)), Snapshot{}, w.deposit(20_000, 1000)); err != nil {
		t.Fatalf("deposit at the minimum: %v", err)
	}
}
