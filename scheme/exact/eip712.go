package exact

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
)

var (
	domainTypeHash = crypto.Keccak256Hash([]byte(
		"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	transferTypeHash = crypto.Keccak256Hash([]byte(
		"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"))
)

// Domain is the EIP-712 domain of an EIP-3009 token.
type Domain struct {
	Name              string
	Version           string
	ChainID           *big.Int
	VerifyingContract common.Address
}

// Separator returns the EIP-712 domain separator.
func (d Domain) Separator() common.Hash {
	buf := make([]byte, 0, 5*32)
	buf = append(buf, domainTypeHash[:]...)
	buf = append(buf, crypto.Keccak256([]byte(d.Name))...)
	buf = append(buf, crypto.Keccak256([]byte(d.Version))...)
	buf = append(buf, math.U256Bytes(new(big.Int).Set(d.ChainID))...)
	buf = append(buf, common.LeftPadBytes(d.VerifyingContract[:], 32)...)
	return crypto.Keccak256Hash(buf)
}

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
	buf := make([]byte, 0, 7*32)
	buf = append(buf, transferTypeHash[:]...)
	buf = append(buf, common.LeftPadBytes(a.From[:], 32)...)
	buf = append(buf, common.LeftPadBytes(a.To[:], 32)...)
	buf = append(buf, math.U256Bytes(new(big.Int).Set(a.Value))...)
	buf = append(buf, math.U256Bytes(new(big.Int).Set(a.ValidAfter))...)
	buf = append(buf, math.U256Bytes(new(big.Int).Set(a.ValidBefore))...)
	buf = append(buf, a.Nonce[:]...)
	return crypto.Keccak256Hash(buf)
}

// Digest returns the EIP-712 digest keccak256(0x1901 ‖ domainSeparator ‖ structHash) that the
// payer signs.
func (a Authorization) Digest(domainSeparator common.Hash) common.Hash {
	h := a.StructHash()
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, domainSeparator[:], h[:])
}
