package evmsig

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
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
