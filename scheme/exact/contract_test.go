package exact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// walletChain is chainState plus smart wallets: each accepts, through ERC-1271, exactly one
// signature of exactly one digest.
type walletChain struct {
	chainState
	wallets map[common.Address]walletAnswer
	asked   int
	err     error
}

type walletAnswer struct {
	digest common.Hash
	sig    []byte
}

func (c *walletChain) IsValidSignature(_ context.Context, account common.Address, digest common.Hash, sig []byte) (bool, error) {
	c.asked++
	if c.err != nil {
		return false, c.err
	}
	w, ok := c.wallets[account]
	return ok && w.digest == digest && bytes.Equal(w.sig, sig), nil
}

// wrap6492 wraps sig the way a wallet that is not deployed yet sends it.
func wrap6492(t testing.TB, sig []byte) []byte {
	t.Helper()
	addrT, _ := abi.NewType("address", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	body, err := abi.Arguments{{Type: addrT}, {Type: bytesT}, {Type: bytesT}}.Pack(common.HexToAddress("0xfac"), []byte{1, 2, 3}, sig)
	if err != nil {
		t.Fatal(err)
	}
	return append(body, bytes.Repeat([]byte{0x64, 0x92}, 16)...)
}

// withSignature is p with its authorization's from and signature replaced.
func withSignature(t testing.TB, p *x402.PaymentPayload, from common.Address, sig []byte) (*x402.PaymentPayload, common.Hash) {
	t.Helper()
	pl, err := ParsePayload(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	pl.Authorization.From, pl.Signature = from, sig
	raw, _ := json.Marshal(pl)
	q := *p
	q.Payload = raw
	domain, _ := testOffer().Domain()
	return &q, pl.Authorization.Digest(domain.Separator())
}

// TestVerifyContractSignature: a payer that is a contract pays with whatever signature it accepts
// through ERC-1271, of any length, bare or in an ERC-6492 wrapper, as it can through the reference
// facilitator; the chain is asked only when the signature is not the payer key's own.
func TestVerifyContractSignature(t *testing.T) {
	payer := mustKey(t, payerKeyHex)
	req := testOffer().Requirements(big.NewInt(1000))
	valid := signedPayload(t, payer, req)
	wallet := common.HexToAddress("0x000000000000000000000000000000000000a11e")
	ownerSig := func() []byte { pl, _ := ParsePayload(valid.Payload); return pl.Signature }()
	long := bytes.Repeat([]byte{0x5a}, 300)

	cases := []struct {
		name      string
		sig       []byte // sent
		accepts   []byte // what the wallet accepts
		err       error
		want      error
		wantSig   []byte // settled with
		wantAsked int
	}{
		{"owner's 65-byte signature", ownerSig, ownerSig, nil, nil, ownerSig, 1},
		{"long signature", long, long, nil, nil, long, 1},
		{"ERC-6492 wrapped", wrap6492(t, long), long, nil, nil, long, 1},
		{"refused by the wallet", long, ownerSig, nil, x402.ReasonExactSignature, nil, 1},
		{"wrapper refused by the wallet", wrap6492(t, long), ownerSig, nil, x402.ReasonExactSignature, nil, 1},
		{"broken wrapper", append(make([]byte, 40), bytes.Repeat([]byte{0x64, 0x92}, 16)...), nil, nil, x402.ReasonExactSignature, nil, 0},
		{"chain unreadable", long, long, errors.New("connection refused"), ErrChainUnavailable, nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, digest := withSignature(t, valid, wallet, tc.sig)
			chain := &walletChain{chainState: chainState{balance: big.NewInt(1_000_000)}, err: tc.err,
				wallets: map[common.Address]walletAnswer{wallet: {digest: digest, sig: tc.accepts}}}
			v := &Verifier{Chain: chain, Now: func() time.Time { return testNow }}
			got, err := v.Verify(context.Background(), req, p)
			if chain.asked != tc.wantAsked {
				t.Errorf("the wallet was asked %d times, want %d", chain.asked, tc.wantAsked)
			}
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if got.Payer != wallet || !got.SignedByContract || !bytes.Equal(got.Payload.Signature, tc.wantSig) {
				t.Fatalf("verified payer %s, by contract %v, signature %x", got.Payer.Hex(), got.SignedByContract, got.Payload.Signature)
			}
		})
	}

	// The payer's own key: no chain call, settled as a key's signature.
	chain := &walletChain{chainState: chainState{balance: big.NewInt(1_000_000)}}
	got, err := (&Verifier{Chain: chain, Now: func() time.Time { return testNow }}).Verify(context.Background(), req, valid)
	if err != nil || got.SignedByContract || chain.asked != 0 {
		t.Fatalf("key-signed payment: %v, by contract %v, wallet asked %d times", err, got != nil && got.SignedByContract, chain.asked)
	}
	// A chain that cannot ask contracts: a signature not by the payer's key is invalid.
	p, _ := withSignature(t, valid, wallet, ownerSig)
	if _, err := (&Verifier{Chain: chainState{balance: big.NewInt(1_000_000)}, Now: func() time.Time { return testNow }}).Verify(context.Background(), req, p); !errors.Is(err, x402.ReasonExactSignature) {
		t.Fatalf("contract signature without a way to ask: %v", err)
	}
}

// TestVerifyOrder: a payment with several faults is refused for the reason the reference gives,
// which checks the signature, then the recipient, the window and the amount, in that order.
func TestVerifyOrder(t *testing.T) {
	payer := mustKey(t, payerKeyHex)
	req := testOffer().Requirements(big.NewInt(1000))
	domain, _ := testOffer().Domain()
	valid := signedPayload(t, payer, req)
	tamper := func(edit func(*Authorization)) *x402.PaymentPayload {
		pl, _ := ParsePayload(valid.Payload)
		edit(&pl.Authorization)
		raw, _ := json.Marshal(pl)
		q := *valid
		q.Payload = raw
		return &q
	}
	other := common.HexToAddress("0xbad")
	cases := []struct {
		name string
		p    *x402.PaymentPayload
		want x402.Reason
	}{
		{"recipient changed after signing", tamper(func(a *Authorization) { a.To = other }), x402.ReasonExactSignature},
		{"value changed after signing", tamper(func(a *Authorization) { a.Value = big.NewInt(999) }), x402.ReasonExactSignature},
		{"wrong recipient, expired", resign(t, valid, payer, domain, func(a *Authorization) {
			a.To, a.ValidBefore = other, big.NewInt(testNow.Unix())
		}), x402.ReasonExactRecipientMismatch},
		{"expired, wrong value", resign(t, valid, payer, domain, func(a *Authorization) {
			a.Value, a.ValidBefore = big.NewInt(999), big.NewInt(testNow.Unix())
		}), x402.ReasonExactValidBefore},
		{"not yet valid, wrong value", resign(t, valid, payer, domain, func(a *Authorization) {
			a.Value, a.ValidAfter = big.NewInt(999), big.NewInt(testNow.Unix()+1)
		}), x402.ReasonExactValidAfter},
	}
	v := &Verifier{Chain: chainState{balance: big.NewInt(1_000_000)}, Now: func() time.Time { return testNow }}
	for _, tc := range cases {
		if _, err := v.Verify(context.Background(), req, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
}
