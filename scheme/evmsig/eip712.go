package evmsig

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
)

var domainTypeHash = crypto.Keccak256Hash([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))

// Domain is an EIP-712 domain with the four usual fields, as tokens (EIP-3009) and the escrow
// contract declare it.
type Domain struct {
	Name              string
	Version           string
	ChainID           *big.Int
	VerifyingContract common.Address
}

// Separator returns the EIP-712 domain separator. Callers on a hot path compute it once.
func (d Domain) Separator() common.Hash {
	var buf [5 * 32]byte
	copy(buf[0:], domainTypeHash[:])
	copy(buf[32:], crypto.Keccak256([]byte(d.Name)))
	copy(buf[64:], crypto.Keccak256([]byte(d.Version)))
	if d.ChainID != nil && d.ChainID.Sign() > 0 && d.ChainID.BitLen() <= 256 {
		d.ChainID.FillBytes(buf[96:128])
	}
	copy(buf[140:], d.VerifyingContract[:])
	return crypto.Keccak256Hash(buf[:])
}

// TypedDigest returns keccak256(0x1901 ‖ domainSeparator ‖ structHash), the value that is signed.
func TypedDigest(domainSeparator, structHash common.Hash) common.Hash {
	var buf [2 + 64]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:], domainSeparator[:])
	copy(buf[34:], structHash[:])
	return crypto.Keccak256Hash(buf[:])
}

// ChainIDFromNetwork parses a CAIP-2 EVM network ("eip155:8453") into its chain id.
func ChainIDFromNetwork(network string) (*big.Int, error) {
	rest, ok := strings.CutPrefix(network, "eip155:")
	if !ok || rest == "" || len(rest) > 20 || (len(rest) > 1 && rest[0] == '0') {
		return nil, fmt.Errorf("network %q is not a CAIP-2 eip155 network", network)
	}
	id, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || id == 0 {
		return nil, fmt.Errorf("network %q has no valid chain id", network)
	}
	return new(big.Int).SetUint64(id), nil
}

// AuthorizationStructHash is hashStruct of an EIP-3009 authorization: typeHash (the
// TransferWithAuthorization or the ReceiveWithAuthorization type, which share their fields)
// followed by from, to, value, validAfter, validBefore and nonce as ABI words.
func AuthorizationStructHash(typeHash common.Hash, from, to common.Address, value, validAfter, validBefore *big.Int, nonce common.Hash) common.Hash {
	var buf [7 * 32]byte
	copy(buf[0:], typeHash[:])
	PutAddress(buf[32:], from)
	PutAddress(buf[64:], to)
	PutWord(buf[96:], value)
	PutWord(buf[128:], validAfter)
	PutWord(buf[160:], validBefore)
	copy(buf[192:], nonce[:])
	return crypto.Keccak256Hash(buf[:])
}

// PutWord writes v as a 32-byte big-endian ABI word, nil as zero. Parsers bound every amount; a
// value outside [0, 2^256) is reduced modulo 2^256 rather than panicking.
func PutWord(dst []byte, v *big.Int) {
	clear(dst[:32])
	if v == nil {
		return
	}
	if v.Sign() >= 0 && v.BitLen() <= 256 {
		v.FillBytes(dst[:32])
		return
	}
	copy(dst[:32], math.U256Bytes(new(big.Int).Set(v)))
}

// PutAddress writes a as a left-padded 32-byte ABI word.
func PutAddress(dst []byte, a common.Address) {
	clear(dst[:12])
	copy(dst[12:32], a[:])
}
