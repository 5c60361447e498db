// Package evmsig holds the EIP-712 and signature plumbing both payment schemes share: domains and
// their separators, typed-data digests, CAIP-2 chain ids, signing and recovery the way EVM
// contracts accept signatures (65 bytes, v in {27, 28} or {0, 1}, low s only), so a signature the
// contracts would reject never verifies here, and the unwrapping of ERC-6492 signatures.
package evmsig

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signature failures of RecoverSigner.
var (
	ErrSignatureLength = errors.New("signature must be 65 bytes")
	ErrSignatureV      = errors.New("signature v must be 27 or 28 (or 0 or 1)")
	ErrSignatureRS     = errors.New("signature r or s out of range")
	ErrSignatureHighS  = errors.New("signature s is in the upper half of the curve order")
)

// secp256k1 group order n and n/2, big-endian, for allocation-free range checks.
var (
	curveOrder     = common.FromHex("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	curveOrderHalf = common.FromHex("0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
	zeroWord       = make([]byte, 32)
)

// SignDigest signs a digest and returns r ‖ s ‖ v with v in {27, 28}, as wallets and viem do.
// go-ethereum signs deterministically (RFC 6979) with low s.
func SignDigest(key *ecdsa.PrivateKey, digest common.Hash) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		return nil, fmt.Errorf("evmsig: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// RecoverSigner returns the address whose key signed digest. It accepts only canonical 65-byte
// ECDSA signatures: v in {0, 1, 27, 28}, 0 < r < n, 0 < s <= n/2. Contracts recover with
// OpenZeppelin's ECDSA or USDC's ECRecover, which reject high s; accepting one here would take a
// payment that can never land.
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
	r, s := sig[:32], sig[32:64]
	if bytes.Equal(r, zeroWord) || bytes.Equal(s, zeroWord) || bytes.Compare(r, curveOrder) >= 0 {
		return common.Address{}, ErrSignatureRS
	}
	if bytes.Compare(s, curveOrderHalf) > 0 {
		return common.Address{}, ErrSignatureHighS
	}
	var norm [65]byte
	copy(norm[:64], sig[:64])
	norm[64] = v
	pub, err := crypto.Ecrecover(digest[:], norm[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("evmsig: recover: %w", err)
	}
	return common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]), nil
}
