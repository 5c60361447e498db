package batch

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Keys of the public test mnemonic (accounts 1 and 2); they never hold real funds.
const (
	payerKeyHex      = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
	authorizerKeyHex = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
)

var testNow = time.Unix(1_800_000_000, 0)

func mustKey(t testing.TB, h string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.HexToECDSA(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testOffer(t testing.TB) Offer {
	return Offer{
		Network: "eip155:1337", Asset: addrT, Name: "USD Coin", Version: "2", PayTo: addrC,
		ReceiverAuthorizer: crypto.PubkeyToAddress(mustKey(t, authorizerKeyHex).PublicKey), WithdrawDelay: 900, MaxTimeoutSeconds: 300,
	}
}

type world struct {
	t      testing.TB
	payer  *ecdsa.PrivateKey
	other  *ecdsa.PrivateKey
	offer  Offer
	terms  Terms
	ver    *Verifier
	signer *Signer
	sep    common.Hash
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, payer: mustKey(t, payerKeyHex), other: mustKey(t, authorizerKeyHex), offer: testOffer(t)}
	w.terms = w.offer.Terms(big.NewInt(1000))
	var err error
	if w.ver, err = NewVerifier(VerifierConfig{Network: w.offer.Network, Now: func() time.Time { return testNow }}); err != nil {
		t.Fatal(err)
	}
	w.signer = &Signer{Key: w.payer, Now: func() time.Time { return testNow }, Rand: zeroReader{}}
	w.sep = w.ver.Separator()
	return w
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 7
	}
	return len(p), nil
}

func (w *world) req() x402.PaymentRequirements { return w.offer.Requirements(big.NewInt(1000)) }

func (w *world) voucher(max int64) *Payload {
	p, err := w.signer.VoucherPayload(w.req(), big.NewInt(max))
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) deposit(amount, max int64) *Payload {
	p, err := w.signer.DepositPayload(w.req(), big.NewInt(amount), big.NewInt(max))
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// resign edits a copy of p, rebinds the channel id to the edited config and signs the voucher
// again with key.
func (w *world) resign(p *Payload, key *ecdsa.PrivateKey, edit func(*Payload)) *Payload {
	q := *p
	edit(&q)
	q.Voucher.ChannelID = q.ChannelConfig.ChannelID(w.sep)
	sig, err := evmsig.SignDigest(key, q.Voucher.Voucher().Digest(w.sep))
	if err != nil {
		w.t.Fatal(err)
	}
	q.Voucher.Signature = sig
	return &q
}

func snapshot(charged, balance, claimed int64) Snapshot {
	return Snapshot{ChargedCumulative: big.NewInt(charged), Balance: big.NewInt(balance), TotalClaimed: big.NewInt(claimed)}
}

func TestVerifyVoucher(t *testing.T) {
	w := newWorld(t)
	valid := w.voucher(2000)
	base := snapshot(1000, 10000, 0)
	highS := *valid
	highS.Voucher.Signature = malleate(valid.Voucher.Signature)
	otherID := *valid
	otherID.Voucher.ChannelID = common.HexToHash("0x01")
	outOfRange := w.terms
	outOfRange.WithdrawDelay = 600
	pending := base
	pending.PendingWithdrawal = big.NewInt(9000)

	cases := []struct {
		name  string
		terms Terms
		snap  Snapshot
		p     *Payload
		want  error
	}{
		{"valid", w.terms, base, valid, nil},
		{"deposit payload", w.terms, base, w.deposit(10000, 2000), x402.ReasonBatchPayloadType},
		{"channel id", w.terms, base, &otherID, x402.ReasonBatchChannelIDMismatch},
		{"receiver", w.terms, base, w.resign(valid, w.payer, func(p *Payload) { p.ChannelConfig.Receiver = addrA }), x402.ReasonBatchReceiverMismatch},
		{"receiver authorizer", w.terms, base, w.resign(valid, w.payer, func(p *Payload) { p.ChannelConfig.ReceiverAuthorizer = addrA }), x402.ReasonBatchReceiverAuthorizerMismatch},
		{"token", w.terms, base, w.resign(valid, w.payer, func(p *Payload) { p.ChannelConfig.Token = addrA }), x402.ReasonBatchTokenMismatch},
		{"withdraw delay", w.terms, base, w.resign(valid, w.payer, func(p *Payload) { p.ChannelConfig.WithdrawDelay = 901 }), x402.ReasonBatchWithdrawDelayMismatch},
		{"withdraw delay range", outOfRange, base, w.resign(valid, w.payer, func(p *Payload) { p.ChannelConfig.WithdrawDelay = 600 }), x402.ReasonBatchWithdrawDelayOutOfRange},
		{"ahead of server", w.terms, base, w.voucher(3000), x402.ReasonBatchCumulativeAmountMismatch},
		{"replay", w.terms, snapshot(2000, 10000, 0), valid, x402.ReasonBatchCumulativeAmountMismatch},
		{"empty channel", w.terms, snapshot(1000, 0, 0), valid, x402.ReasonBatchChannelNotFound},
		{"over balance", w.terms, snapshot(1000, 1999, 0), valid, x402.ReasonBatchCumulativeExceedsBalance},
		{"pending withdrawal", w.terms, pending, valid, x402.ReasonBatchCumulativeExceedsBalance},
		{"below claimed", w.terms, snapshot(1000, 10000, 2000), valid, x402.ReasonBatchCumulativeBelowClaimed},
		{"wrong signer", w.terms, base, w.resign(valid, w.other, func(*Payload) {}), x402.ReasonBatchVoucherSignature},
		{"high s", w.terms, base, &highS, x402.ReasonBatchVoucherSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.ver.VerifyVoucher(tc.terms, tc.snap, tc.p)
			if tc.want == nil {
				if err != nil || got.Payer != w.signer.Address() || got.ChannelID != tc.p.Voucher.ChannelID {
					t.Fatalf("valid voucher rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if r, ok := x402.ReasonOf(err); !ok || r != tc.want {
				t.Fatalf("reason %q", r)
			}
		})
	}
}

func TestCumulativeMismatchCarriesCorrectiveState(t *testing.T) {
	w := newWorld(t)
	last := w.voucher(2000)
	snap := Snapshot{
		ChargedCumulative: big.NewInt(2000), Balance: big.NewInt(10000), TotalClaimed: big.NewInt(500),
		WithdrawRequestedAt: 1_799_999_000, RefundNonce: big.NewInt(3), SignedMaxClaimable: big.NewInt(2000), Signature: last.Voucher.Signature,
	}
	_, err := w.ver.VerifyVoucher(w.terms, snap, last)
	var mm *CumulativeMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("got %v", err)
	}
	if mm.Expected.Int64() != 3000 || mm.Got.Int64() != 2000 || mm.State.ChannelID != last.Voucher.ChannelID ||
		mm.State.ChargedCumulativeAmount.Int64() != 2000 || mm.State.RefundNonce.Int64() != 3 || mm.Voucher == nil {
		t.Fatalf("mismatch %+v", mm)
	}
	req := mm.Corrective(w.req())
	extra, err := ParseRequirementsExtra(req.Extra)
	if err != nil {
		t.Fatal(err)
	}
	if extra.ChannelState.TotalClaimed.Int64() != 500 || extra.ChannelState.WithdrawRequestedAt != 1_799_999_000 ||
		extra.VoucherState.SignedMaxClaimable.Int64() != 2000 || extra.ReceiverAuthorizer != w.offer.ReceiverAuthorizer {
		t.Fatalf("corrective extra %+v", extra)
	}
	if _, had := w.req().Extra["channelState"]; had {
		t.Fatal("Corrective modified the original requirement")
	}
	// With no voucher on record the corrective 402 has no voucherState: the client then falls
	// back to on-chain state.
	snap.Signature = nil
	_, err = w.ver.VerifyVoucher(w.terms, snap, last)
	if errors.As(err, &mm); mm.Voucher != nil {
		t.Fatal("voucher state without a signature")
	}
}

func TestVerifySmartWalletNeedsOnchainCheck(t *testing.T) {
	w := newWorld(t)
	p := w.resign(w.voucher(2000), w.payer, func(p *Payload) { p.ChannelConfig.PayerAuthorizer = common.Address{} })
	p.Voucher.Signature = make([]byte, 300) // an EIP-1271 blob
	got, err := w.ver.VerifyVoucher(w.terms, snapshot(1000, 10000, 0), p)
	var oc *OnchainCheckError
	if !errors.Is(err, ErrOnchainCheck) || !errors.As(err, &oc) || got == nil {
		t.Fatalf("got %v, %v", got, err)
	}
	if len(oc.Checks) != 1 || oc.Checks[0].Signer != p.ChannelConfig.Payer || oc.Checks[0].Digest != p.Voucher.Voucher().Digest(w.sep) {
		t.Fatalf("checks %+v", oc.Checks)
	}
	if _, isReason := x402.ReasonOf(err); isReason {
		t.Fatal("an on-chain check is not a payment failure")
	}
	// Local failures still come first.
	if _, err := w.ver.VerifyVoucher(w.terms, snapshot(1000, 1500, 0), p); !errors.Is(err, x402.ReasonBatchCumulativeExceedsBalance) {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyRefund(t *testing.T) {
	w := newWorld(t)
	refund, err := w.signer.RefundPayload(w.req(), big.NewInt(2000), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		snap Snapshot
		p    *Payload
		want error
	}{
		"valid":           {snapshot(2000, 10000, 2000), refund, nil},
		"not zero-charge": {snapshot(1000, 10000, 0), refund, x402.ReasonBatchCumulativeAmountMismatch},
		"nothing left":    {snapshot(2000, 2000, 0), refund, x402.ReasonBatchRefundNoBalance},
		"below claimed":   {snapshot(2000, 10000, 2500), refund, x402.ReasonBatchCumulativeBelowClaimed},
		"voucher payload": {snapshot(2000, 10000, 0), w.voucher(3000), x402.ReasonBatchPayloadType},
		"wrong signer":    {snapshot(2000, 10000, 0), w.resign(refund, w.other, func(*Payload) {}), x402.ReasonBatchVoucherSignature},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := w.ver.VerifyRefund(w.terms, tc.snap, tc.p)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// malleate returns the high-s twin (r, n-s, v^1) of a signature: the same key recovers from it.
func malleate(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	n := new(big.Int).SetBytes(curveOrder)
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64]))
	s.FillBytes(out[32:64])
	out[64] = 27 + ((sig[64] - 27) ^ 1)
	return out
}

func TestRecoverSignerRejectsNonCanonical(t *testing.T) {
	key := mustKey(t, payerKeyHex)
	digest := crypto.Keccak256Hash([]byte("payper"))
	sig, err := evmsig.SignDigest(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range [][]byte{sig, append(append([]byte(nil), sig[:64]...), sig[64]-27)} {
		if got, err := evmsig.RecoverSigner(digest, ok); err != nil || got != crypto.PubkeyToAddress(key.PublicKey) {
			t.Fatalf("recover = %s, %v", got.Hex(), err)
		}
	}
	// The naive recovery of the high-s twin yields the same key; it must still be refused.
	twin := malleate(sig)
	twin[64] -= 27
	if pub, err := crypto.SigToPub(digest[:], twin); err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("twin is not a valid signature of the same key: %v", err)
	}
	nOrder := append([]byte(nil), curveOrder...)
	for name, tc := range map[string]struct {
		sig  []byte
		want error
	}{
		"high-s twin": {malleate(sig), evmsig.ErrSignatureHighS},
		"64 bytes":    {sig[:64], evmsig.ErrSignatureLength},
		"v=29":        {append(append([]byte(nil), sig[:64]...), 29), evmsig.ErrSignatureV},
		"zero r":      {append(make([]byte, 32), sig[32:]...), evmsig.ErrSignatureRS},
		"r = n":       {append(nOrder, sig[32:]...), evmsig.ErrSignatureRS},
		"zero s":      {append(append(append([]byte(nil), sig[:32]...), make([]byte, 32)...), 27), evmsig.ErrSignatureRS},
	} {
		if _, err := evmsig.RecoverSigner(digest, tc.sig); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestChannelIDCacheIsBounded(t *testing.T) {
	ver, err := NewVerifier(VerifierConfig{Network: "eip155:1337", CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		c := ChannelConfig{Payer: addrA, Receiver: addrC, ReceiverAuthorizer: addrB, Token: addrT, WithdrawDelay: 900, Salt: common.BigToHash(big.NewInt(int64(i)))}
		if got, want := ver.ChannelID(c), c.ChannelID(ver.Separator()); got != want {
			t.Fatalf("cached id %s, want %s", got.Hex(), want.Hex())
		}
		if got, want := ver.ChannelID(c), c.ChannelID(ver.Separator()); got != want {
			t.Fatalf("second lookup %s, want %s", got.Hex(), want.Hex())
		}
		if n := ver.ids.len(); n > 4 {
			t.Fatalf("cache holds %d entries, bound is 4", n)
		}
	}
}

func TestNewVerifierRejectsBadNetwork(t *testing.T) {
	for _, n := range []string{"", "eip155:", "eip155:0", "eip155:01", "solana:1", "eip155:1x", "eip155:99999999999999999999999"} {
		if _, err := NewVerifier(VerifierConfig{Network: n}); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestVerifyIncompletePayloadsDoNotPanic(t *testing.T) {
	w := newWorld(t)
	if _, err := w.ver.VerifyVoucher(w.terms, Snapshot{}, &Payload{Type: TypeVoucher}); !errors.Is(err, x402.ReasonBatchVoucherPayload) {
		t.Errorf("voucher: %v", err)
	}
	if _, err := w.ver.VerifyRefund(w.terms, Snapshot{}, nil); !errors.Is(err, x402.ReasonBatchPayloadType) {
		t.Errorf("nil refund: %v", err)
	}
	p := w.deposit(10000, 1000)
	p.Deposit = &Deposit{Amount: big.NewInt(1), ERC3009: &ERC3009Authorization{}}
	if _, err := w.ver.VerifyDeposit(w.terms, Snapshot{}, p); !errors.Is(err, x402.ReasonBatchDepositPayload) {
		t.Errorf("deposit: %v", err)
	}
}

// The secp256k1 group order n, big-endian, for building out-of-range signatures.
var (
	curveOrder = crypto.S256().Params().N.Bytes()
)
