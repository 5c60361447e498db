package devkeys

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/crypto"
	"golang.org/x/crypto/pbkdf2"
)

// hardenedOffset marks a BIP-32 child index as hardened (written i').
const hardenedOffset uint32 = 1 << 31

// errUnusableKey reports the (astronomically rare) BIP-32 case where a
// derived scalar is zero or not below the curve order.
var errUnusableKey = errors.New("devkeys: derived key is unusable, BIP-32 says skip this index")

// mnemonicSeed is the BIP-39 seed: PBKDF2-HMAC-SHA512 over the mnemonic,
// salted with "mnemonic"+passphrase, 2048 rounds, 64 bytes.
func mnemonicSeed(mnemonic, passphrase string) []byte {
	return pbkdf2.Key([]byte(mnemonic), []byte("mnemonic"+passphrase), 2048, 64, sha512.New)
}

// extendedKey is a BIP-32 private extended key: a secp256k1 scalar and the
// chain code that feeds the derivation of its children.
type extendedKey struct {
	key       [32]byte
	chainCode [32]byte
}

// masterKey computes the BIP-32 master key from a seed.
func masterKey(seed []byte) (*extendedKey, error) {
	sum := hmacSHA512([]byte("Bitcoin seed"), seed)
	if !validScalar(new(big.Int).SetBytes(sum[:32])) {
		return nil, errUnusableKey
	}
	k := new(extendedKey)
	copy(k.key[:], sum[:32])
	copy(k.chainCode[:], sum[32:])
	return k, nil
}

// child derives the private child key at index i (hardened when
// i >= hardenedOffset).
func (k *extendedKey) child(i uint32) (*extendedKey, error) {
	data := make([]byte, 0, 37)
	if i >= hardenedOffset {
		// Hardened children hash the parent private key, so they cannot be
		// derived from the public key alone.
		data = append(data, 0)
		data = append(data, k.key[:]...)
	} else {
		priv, err := k.privateKey()
		if err != nil {
			return nil, err
		}
		data = append(data, crypto.CompressPubkey(&priv.PublicKey)...)
	}
	data = binary.BigEndian.AppendUint32(data, i)
	sum := hmacSHA512(k.chainCode[:], data)

	tweak := new(big.Int).SetBytes(sum[:32])
	if tweak.Cmp(curveOrder()) >= 0 {
		return nil, errUnusableKey
	}
	scalar := tweak.Add(tweak, new(big.Int).SetBytes(k.key[:]))
	scalar.Mod(scalar, curveOrder())
	if scalar.Sign() == 0 {
		return nil, errUnusableKey
	}
	c := new(extendedKey)
	scalar.FillBytes(c.key[:])
	copy(c.chainCode[:], sum[32:])
	return c, nil
}

// privateKey returns the secp256k1 private key of k.
func (k *extendedKey) privateKey() (*ecdsa.PrivateKey, error) {
	return crypto.ToECDSA(k.key[:])
}

func hmacSHA512(key, data []byte) []byte {
	mac := hmac.New(sha512.New, key)
	mac.Write(data)
	return mac.Sum(nil)
}

func curveOrder() *big.Int { return crypto.S256().Params().N }

func validScalar(s *big.Int) bool {
	return s.Sign() > 0 && s.Cmp(curveOrder()) < 0
}
