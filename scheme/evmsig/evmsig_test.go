package evmsig

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestRecoverSignerRejectsNonCanonical(t *testing.T) {
	key, err := crypto.HexToECDSA("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d") // test account 1 of the public test mnemonic
	if err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("payper"))
	sig, err := SignDigest(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := RecoverSigner(digest, sig); err != nil || got != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("recover = %s, %v", got, err)
	}
	low := append([]byte(nil), sig...)
	low[64] -= 27 // v in {0,1} is accepted too
	if _, err := RecoverSigner(digest, low); err != nil {
		t.Fatalf("v=0/1 rejected: %v", err)
	}
	// The malleable twin (r, n-s, v^1) recovers the same key on a naive check: reject it.
	twin := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	copy(twin[32:64], math.U256Bytes(new(big.Int).Sub(crypto.S256().Params().N, s)))
	twin[64] = 27 + ((sig[64] - 27) ^ 1)
	cases := map[string]struct {
		sig  []byte
		want error
	}{
		"high-s twin": {twin, ErrSignatureHighS},
		"64 bytes":    {sig[:64], ErrSignatureLength},
		"66 bytes":    {append(append([]byte(nil), sig...), 0), ErrSignatureLength},
		"v=29":        {append(append([]byte(nil), sig[:64]...), 29), ErrSignatureV},
		"zero r":      {append(make([]byte, 32), sig[32:]...), ErrSignatureRS},
	}
	for name, tc := range cases {
		if _, err := RecoverSigner(digest, tc.sig); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzRecoverSigner(f *testing.F) {
	key, _ := crypto.HexToECDSA("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	digest := crypto.Keccak256Hash([]byte("payper"))
	sig, _ := SignDigest(key, digest)
	f.Add(sig, digest[:])
	f.Add([]byte{}, []byte{})
	half := new(big.Int).Rsh(crypto.S256().Params().N, 1)
	f.Fuzz(func(t *testing.T, sig, msg []byte) {
		var d common.Hash
		copy(d[:], msg)
		if _, err := RecoverSigner(d, sig); err != nil {
			return
		}
		if len(sig) != 65 || new(big.Int).SetBytes(sig[32:64]).Cmp(half) > 0 {
			t.Fatalf("accepted a non-canonical signature %x", sig)
		}
	})
}
