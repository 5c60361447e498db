package exact

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signature failures.
var (
	ErrSignatureLength = errors.New("signature must be 65 bytes")
	ErrSignatureV      = errors.New("signature v must be 27 or 28 (or 0 or 1)")
	ErrSignatureRS     = errors.New("signature r or s out of range")
	ErrSignatureHighS  = errors.New("signature s is in the upper half of the curve order")
)

var (
	secp256k1N     = crypto.S256().Params().N
	secp256k1HalfN = new(big.Int).Rsh(secp256k1N, 1)
)

// SignDigest signs an EIP-712 digest and returns r ‖ s ‖ v with v in {27, 28}, the form tokens
// and wallets expect.
func SignDigest(key *ecdsa.PrivateKey, digest common.Hash) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		return nil, fmt.Errorf("exact: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// RecoverSigner returns the address that signed digest. It accepts only canonical 65-byte ECDSA
// signatures: v in {0,1,27,28}, 0 < r < n, 0 < s <= n/2. The token contract rejects high-s too,
// so accepting one here would verify a payment that can never settle.
func RecoverSigner(digest common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("%w, got %d", ErrSignatureLength, len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return common.Address{}, ErrSignatureV
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(secp256k1N) >= 0 {
		return common.Address{}, ErrSignatureRS
	}
	if s.Cmp(secp256k1HalfN) > 0 {
		return common.Address{}, ErrSignatureHighS
	}
	norm := make([]byte, 65)
	copy(norm, sig[:64])
	norm[64] = v
	pub, err := crypto.SigToPub(digest[:], norm)
	if err != nil {
		return common.Address{}, fmt.Errorf("exact: recover: %w", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
