package exact

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Keys of the public test mnemonic (accounts 1 and 2); they never hold real funds.
const (
	payerKeyHex = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
	otherKeyHex = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
)

var (
	testAsset = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	testPayTo = common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
	testNow   = time.Unix(1_800_000_000, 0)
)

func mustKey(t testing.TB, h string) *ecdsa.PrivateKey {
	k, err := crypto.HexToECDSA(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testOffer() Offer {
	return Offer{Network: "eip155:1337", Asset: testAsset, Name: "USD Coin", Version: "2", PayTo: testPayTo, MaxTimeoutSeconds: 60}
}

// TestDigestMatchesGenericTypedData checks the hand-rolled EIP-712 hashing against go-ethereum's
// generic typed-data implementation.
func TestDigestMatchesGenericTypedData(t *testing.T) {
	auth := Authorization{
		From: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), To: testPayTo,
		Value: new(big.Int).Lsh(big.NewInt(1), 200), ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(1_800_000_060),
		Nonce: common.HexToHash("0xabababababababababababababababababababababababababababababababab"),
	}
	domain, _ := testOffer().Domain()
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
			"TransferWithAuthorization": {{Name: "from", Type: "address"}, {Name: "to", Type: "address"}, {Name: "value", Type: "uint256"},
				{Name: "validAfter", Type: "uint256"}, {Name: "validBefore", Type: "uint256"}, {Name: "nonce", Type: "bytes32"}},
		},
		PrimaryType: "TransferWithAuthorization",
		Domain:      apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", ChainId: math.NewHexOrDecimal256(1337), VerifyingContract: testAsset.Hex()},
		Message: apitypes.TypedDataMessage{
			"from": auth.From.Hex(), "to": auth.To.Hex(), "value": auth.Value.String(),
			"validAfter": "0", "validBefore": "1800000060", "nonce": auth.Nonce.Hex(),
		},
	}
	want, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	if got := auth.Digest(domain.Separator()); !bytesEqual(got[:], want) {
		t.Fatalf("digest %x, generic implementation says %x", got, want)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// chainState is a ChainReader over fixed values, for the verification logic's unit tests; the
// end-to-end tests run the same checks against the real token on the embedded chain.
type chainState struct {
	balance *big.Int
	used    bool
	err     error
}

func (c chainState) BalanceOf(context.Context, common.Address, common.Address) (*big.Int, error) {
	return c.balance, c.err
}
func (c chainState) AuthorizationState(context.Context, common.Address, common.Address, common.Hash) (bool, error) {
	return c.used, c.err
}

func signedPayload(t testing.TB, key *ecdsa.PrivateKey, req x402.PaymentRequirements) *x402.PaymentPayload {
	// A fixed nonce keeps fuzz workers, which rebuild this payload, in agreement.
	s := &Signer{Key: key, Now: func() time.Time { return testNow }, Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 32))}
	p, err := s.CreatePayload(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resign rewrites the authorization with edit and signs it again with key under domain.
func resign(t testing.TB, p *x402.PaymentPayload, key *ecdsa.PrivateKey, domain Domain, edit func(*Authorization)) *x402.PaymentPayload {
	pl, err := ParsePayload(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	edit(&pl.Authorization)
	pl.Signature, _ = evmsig.SignDigest(key, pl.Authorization.Digest(domain.Separator()))
	raw, _ := json.Marshal(pl)
	q := *p
	q.Payload = raw
	return &q
}

func TestVerify(t *testing.T) {
	payer, other := mustKey(t, payerKeyHex), mustKey(t, otherKeyHex)
	offer := testOffer()
	req := offer.Requirements(big.NewInt(1000))
	domain, _ := offer.Domain()
	rich := chainState{balance: big.NewInt(1_000_000)}
	valid := signedPayload(t, payer, req)

	wrongDomain := domain
	wrongDomain.Name = "USD Coin Fake"
	otherChain := domain
	otherChain.ChainID = big.NewInt(8453)
	otherToken := domain
	otherToken.VerifyingContract = common.HexToAddress("0x00000000000000000000000000000000000000aa")

	cases := []struct {
		name  string
		p     *x402.PaymentPayload
		chain chainState
		want  error
	}{
		{"valid", valid, rich, nil},
		{"wrong signer", resign(t, valid, other, domain, func(*Authorization) {}), rich, x402.ReasonExactSignature},
		{"other domain name", resign(t, valid, payer, wrongDomain, func(*Authorization) {}), rich, x402.ReasonExactSignature},
		{"other chain", resign(t, valid, payer, otherChain, func(*Authorization) {}), rich, x402.ReasonExactSignature},
		{"other token", resign(t, valid, payer, otherToken, func(*Authorization) {}), rich, x402.ReasonExactSignature},
		{"recipient", resign(t, valid, payer, domain, func(a *Authorization) { a.To = common.HexToAddress("0xbad") }), rich, x402.ReasonExactRecipientMismatch},
		{"value below", resign(t, valid, payer, domain, func(a *Authorization) { a.Value = big.NewInt(999) }), rich, x402.ReasonExactValueMismatch},
		{"value above", resign(t, valid, payer, domain, func(a *Authorization) { a.Value = big.NewInt(1001) }), rich, x402.ReasonExactValueMismatch},
		{"expires too soon", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = big.NewInt(testNow.Unix() + 5) }), rich, x402.ReasonExactValidBefore},
		{"expired", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = big.NewInt(testNow.Unix() - 1) }), rich, x402.ReasonExactValidBefore},
		// The reference refuses neither: how long a payer lets its authorization live is its
		// own business, whatever maxTimeoutSeconds the offer said.
		{"window longer than maxTimeoutSeconds", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = big.NewInt(testNow.Unix() + 3600) }), rich, nil},
		{"valid until year 2100", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = big.NewInt(4_102_444_800) }), rich, nil},
		{"valid until 2^256-1", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = maxUint256() }), rich, nil},
		{"exactly the margin left", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidBefore = big.NewInt(testNow.Unix() + 6) }), rich, nil},
		{"valid from now", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidAfter = big.NewInt(testNow.Unix()) }), rich, nil},
		{"not yet valid", resign(t, valid, payer, domain, func(a *Authorization) { a.ValidAfter = big.NewInt(testNow.Unix() + 60) }), rich, x402.ReasonExactValidAfter},
		{"nonce used", valid, chainState{balance: big.NewInt(1_000_000), used: true}, x402.ReasonExactNonceAlreadyUsed},
		{"poor payer", valid, chainState{balance: big.NewInt(999)}, x402.ReasonExactInsufficientBalance},
		{"rpc down", valid, chainState{err: errors.New("connection refused")}, ErrChainUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Chain: tc.chain, Now: func() time.Time { return testNow }}
			got, err := v.Verify(context.Background(), req, tc.p)
			if tc.want == nil {
				if err != nil || got.Payer != crypto.PubkeyToAddress(payer.PublicKey) {
					t.Fatalf("valid payment rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func maxUint256() *big.Int {
	return new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
}

// TestExpiresWithin: the reference's rule, validBefore >= now + margin in whole seconds, and an
// authorization expiring this very second is expired whatever the margin.
func TestExpiresWithin(t *testing.T) {
	now := time.Unix(1_800_000_000, 400_000_000)
	sec := now.Unix()
	cases := []struct {
		validBefore *big.Int
		margin      time.Duration
		want        bool
	}{
		{big.NewInt(sec + 6), 6 * time.Second, false},
		{big.NewInt(sec + 5), 6 * time.Second, true},
		{big.NewInt(sec + 10), 10 * time.Second, false},
		{big.NewInt(sec + 9), 10 * time.Second, true},
		{big.NewInt(sec + 6), 6500 * time.Millisecond, false}, // now + 6.5 s is still second sec+6
		{big.NewInt(sec + 1), 0, false},
		{big.NewInt(sec), 0, true},
		{big.NewInt(sec), 100 * time.Millisecond, true},
		{big.NewInt(0), 0, true},
		{maxUint256(), 6 * time.Second, false},
	}
	for _, tc := range cases {
		if got := ExpiresWithin(tc.validBefore, now, tc.margin); got != tc.want {
			t.Errorf("ExpiresWithin(now%+d s, margin %s) = %v, want %v", tc.validBefore.Int64()-sec, tc.margin, got, tc.want)
		}
	}
}

func TestVerifyOfferMismatchAndMalformedPayloads(t *testing.T) {
	payer := mustKey(t, payerKeyHex)
	req := testOffer().Requirements(big.NewInt(1000))
	v := &Verifier{Chain: chainState{balance: big.NewInt(1 << 40)}, Now: func() time.Time { return testNow }}
	base := signedPayload(t, payer, req)

	noDomain := req
	noDomain.Extra = nil
	if _, err := v.Verify(context.Background(), noDomain, base); !errors.Is(err, x402.ReasonExactMissingDomain) {
		t.Fatalf("missing domain: %v", err)
	}
	wrongNet := *base
	wrongNet.Accepted.Network = "eip155:1"
	if _, err := v.Verify(context.Background(), req, &wrongNet); !errors.Is(err, x402.ReasonExactNetworkMismatch) {
		t.Fatalf("network: %v", err)
	}
	wrongScheme := *base
	wrongScheme.Accepted.Scheme = "upto"
	if _, err := v.Verify(context.Background(), req, &wrongScheme); !errors.Is(err, x402.ReasonExactScheme) {
		t.Fatalf("scheme: %v", err)
	}
	good := string(base.Payload)
	for name, payload := range map[string]string{
		"not an object":   `"hello"`,
		"no signature":    strings.Replace(good, `"signature":"0x`, `"sig":"0x`, 1),
		"short nonce":     replaceField(t, good, "nonce", "0x1234"),
		"hex value":       replaceField(t, good, "value", "0x3e8"),
		"negative value":  replaceField(t, good, "value", "-1000"),
		"fractional":      replaceField(t, good, "validBefore", "1.5"),
		"exponent":        replaceField(t, good, "value", "1e3"),
		"huge value":      replaceField(t, good, "value", strings.Repeat("9", 90)),
		"bad from":        replaceField(t, good, "from", "0x1234"),
		"non-hex sig":     strings.Replace(good, `"signature":"0x`, `"signature":"0xzz`, 1),
		"number for text": strings.Replace(good, `"value":"1000"`, `"value":1000`, 1),
	} {
		q := *base
		q.Payload = json.RawMessage(payload)
		_, err := v.Verify(context.Background(), req, &q)
		if !errors.Is(err, x402.ReasonExactPayload) && !errors.Is(err, x402.ReasonExactMissingSignature) {
			t.Errorf("%s: got %v, want a payload reason", name, err)
		}
	}
}

func replaceField(t testing.TB, payload, field, value string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatal(err)
	}
	m["authorization"].(map[string]any)[field] = value
	b, _ := json.Marshal(m)
	return string(b)
}
