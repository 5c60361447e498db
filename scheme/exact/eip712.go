package exact

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
)

var (
	transferTypeHash = crypto.Keccak256Hash([]byte(
		"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"))
)

// Domain is the EIP-712 domain of an EIP-3009 token.
type Domain = evmsig.Domain

// Authorization is an EIP-3009 TransferWithAuthorization message.
type Authorization struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Nonce       common.Hash
}

// StructHash returns hashStruct(TransferWithAuthorization).
func (a Authorization) StructHash() common.Hash {
	return evmsig.AuthorizationStructHash(transferTypeHash, a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce)
}

// Digest returns the EIP-712 digest keccak256(0x1901 ‖ domainSeparator ‖ structHash) that the
// payer signs.
func (a Authorization) Digest(domainSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(domainSeparator, a.StructHash())
}
