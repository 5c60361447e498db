package exact

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// The two transferWithAuthorization overloads a settlement calls, and the event that proves one
// happened. Only their ABI encoding lives here: sending them is the settlement engine's.
var (
	// transferVRS is transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32),
	// which every EIP-3009 token implements.
	transferVRS = newCall("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
		"address", "address", "uint256", "uint256", "uint256", "bytes32", "uint8", "bytes32", "bytes32")
	// transferBytes is transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes),
	// which tokens that accept contract signatures implement (USDC from v2.2).
	transferBytes = newCall("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
		"address", "address", "uint256", "uint256", "uint256", "bytes32", "bytes")
	// authorizationUsedTopic is the AuthorizationUsed(address authorizer, bytes32 nonce) event's topic.
	authorizationUsedTopic = crypto.Keccak256Hash([]byte("AuthorizationUsed(address,bytes32)"))
)

// call is a contract function's selector and argument types.
type call struct {
	selector []byte
	args     abi.Arguments
}

func newCall(signature string, types ...string) call {
	c := call{selector: crypto.Keccak256([]byte(signature))[:4]}
	for _, t := range types {
		typ, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(err) // the types above are constants
		}
		c.args = append(c.args, abi.Argument{Type: typ})
	}
	return c
}

func (c call) pack(values ...any) ([]byte, error) {
	enc, err := c.args.Pack(values...)
	if err != nil {
		return nil, err
	}
	return append(append(make([]byte, 0, len(c.selector)+len(enc)), c.selector...), enc...), nil
}

// TransferWithAuthorizationData packs an EIP-3009 transferWithAuthorization call in its (v, r, s)
// form, which every EIP-3009 token implements. sig is the 65-byte r‖s‖v signature (v 0/1 or 27/28).
func TransferWithAuthorizationData(from, to common.Address, value, validAfter, validBefore *big.Int, nonce common.Hash, sig []byte) ([]byte, error) {
	if len(sig) != 65 {
		return nil, fmt.Errorf("exact: signature must be 65 bytes, got %d", len(sig))
	}
	v := sig[64]
	if v < 27 {
		v += 27
	}
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	return transferVRS.pack(from, to, value, validAfter, validBefore, nonce, v, r, s)
}

// TransferWithAuthorizationBytesData packs an EIP-3009 transferWithAuthorization call in its
// (bytes signature) form, which tokens that accept contract signatures implement (USDC from
// v2.2): the signature reaches the payer contract's isValidSignature byte for byte.
func TransferWithAuthorizationBytesData(from, to common.Address, value, validAfter, validBefore *big.Int, nonce common.Hash, sig []byte) ([]byte, error) {
	return transferBytes.pack(from, to, value, validAfter, validBefore, nonce, sig)
}

// TransferData is the calldata that settles a verified payment: the (bytes signature) form when a
// payer contract accepted the signature, so that it reaches the contract unchanged, the (v, r, s)
// form otherwise.
func (v *Verified) TransferData() ([]byte, error) {
	a, sig := v.Payload.Authorization, v.Payload.Signature
	pack := TransferWithAuthorizationData
	if v.SignedByContract {
		pack = TransferWithAuthorizationBytesData
	}
	return pack(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig)
}

// AuthorizationUsed reports whether receipt, a mined transaction's, shows token using
// authorizer's nonce: the EIP-3009 transfer happened. A transaction that carried several
// transfers (a batch) can succeed while one of them failed.
func AuthorizationUsed(receipt *types.Receipt, token, authorizer common.Address, nonce common.Hash) bool {
	if receipt == nil || receipt.Status != types.ReceiptStatusSuccessful {
		return false
	}
	for _, l := range receipt.Logs {
		if l.Address == token && len(l.Topics) == 3 && l.Topics[0] == authorizationUsedTopic &&
			common.BytesToAddress(l.Topics[1].Bytes()) == authorizer && l.Topics[2] == nonce {
			return true
		}
	}
	return false
}
