package interop_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// draft is one payment of the differential test on its way to a PAYMENT-SIGNATURE header. A
// case edits it in three places: the authorization, key and domain before signing (a payer
// who signed something else), the wire form after signing (tampering, or spellings a payer's
// code may write), and the JSON text (what a JSON value cannot express, such as repeated keys).
type draft struct {
	key    *ecdsa.PrivateKey
	auth   exact.Authorization
	domain exact.Domain             // the domain the payer signs for
	offer  x402.PaymentRequirements // the seller's one offer
	// margin is Payper's settlement.inclusionMargin for the case (0: the default, 6 s).
	margin time.Duration
	// sig rewrites the signature once made (nil keeps it).
	sig func(sig []byte) []byte
	// wire edits the envelope as a JSON value: "payload" → "authorization" and so on.
	wire func(env map[string]any)
	// text edits the JSON text last.
	text func(s string) string
}

// header signs d and encodes it as a PAYMENT-SIGNATURE value.
func (d *draft) header() (string, error) {
	sig, err := evmsig.SignDigest(d.key, d.auth.Digest(d.domain.Separator()))
	if err != nil {
		return "", err
	}
	if d.sig != nil {
		sig = d.sig(sig)
	}
	a := d.auth
	env := map[string]any{
		"x402Version": x402.Version,
		"resource":    map[string]any{"url": diffResourceURL, "description": "", "mimeType": ""},
		"accepted":    requirementsValue(d.offer),
		"payload": map[string]any{
			"signature": "0x" + hex.EncodeToString(sig),
			"authorization": map[string]any{
				"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value.String(),
				"validAfter": a.ValidAfter.String(), "validBefore": a.ValidBefore.String(), "nonce": a.Nonce.Hex(),
			},
		},
	}
	if d.wire != nil {
		d.wire(env)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	s := string(raw)
	if d.text != nil {
		s = d.text(s)
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

// requirementsValue is req as a JSON value a case can edit member by member.
func requirementsValue(req x402.PaymentRequirements) map[string]any {
	raw, err := json.Marshal(req)
	if err != nil {
		panic(err) // plain strings and numbers
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return v
}

// Accessors of the envelope's nested objects, for the wire edits.
func member(env map[string]any, path ...string) map[string]any {
	m := env
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func authorizationOf(env map[string]any) map[string]any {
	return member(env, "payload", "authorization")
}

// setAuth sets one authorization member on the wire.
func setAuth(key string, v any) func(env map[string]any) {
	return func(env map[string]any) { authorizationOf(env)[key] = v }
}

// setAccepted sets one member of the payer's copy of the offer.
func setAccepted(key string, v any) func(env map[string]any) {
	return func(env map[string]any) { member(env, "accepted")[key] = v }
}

// replaceOnce replaces the first old in the JSON text.
func replaceOnce(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// Signature rewrites.

// highS is the other valid ECDSA signature of the same digest: s' = n - s, v flipped.
func highS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(out[32:64])
	s.Sub(crypto.S256().Params().N, s)
	s.FillBytes(out[32:64])
	out[64] ^= 1 // 27 <-> 28
	return out
}

func withV(v byte) func([]byte) []byte {
	return func(sig []byte) []byte {
		out := append([]byte(nil), sig...)
		out[64] = v
		return out
	}
}

func vAsParity(sig []byte) []byte { return withV(sig[64] - 27)(sig) }

func zeroR(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	clear(out[:32])
	return out
}

func resize(n int) func([]byte) []byte {
	return func(sig []byte) []byte {
		out := make([]byte, n)
		copy(out, sig)
		return out
	}
}

// erc6492 wraps a signature the way a wallet that may not be deployed yet sends it, naming a
// factory and its calldata (neither of which the verifiers here use).
func erc6492(sig []byte) []byte {
	addrT, _ := abi.NewType("address", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	body, err := abi.Arguments{{Type: addrT}, {Type: bytesT}, {Type: bytesT}}.Pack(
		common.HexToAddress("0x0000000000000000000000000000000000000fac"), []byte{0xde, 0xad}, sig)
	if err != nil {
		panic(err)
	}
	return append(body, bytes.Repeat([]byte{0x64, 0x92}, 16)...)
}

// keyFor derives a fixed key from a label: deterministic and, unlike the dev accounts, holding
// nothing.
func keyFor(label string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("payper diffverify key " + label)))
	if err != nil {
		panic(err)
	}
	return k
}

// nonceFor is the fixed authorization nonce of a case.
func nonceFor(label string) common.Hash {
	return crypto.Keccak256Hash([]byte("payper diffverify nonce " + label))
}

func addressOf(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }
