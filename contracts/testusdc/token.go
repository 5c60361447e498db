package testusdc

import (
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Constants of the token; the contract returns the same values.
const (
	Name          = "USD Coin" // ERC-20 name() and EIP-712 domain name
	Symbol        = "USDC"
	Decimals      = 6
	EIP712Version = "2"
)

// Revert reasons (Error(string)) raised by the contract.
const (
	ReasonNotMinter        = "FiatToken: caller is not a minter"
	ReasonNotYetValid      = "FiatTokenV2: authorization is not yet valid"
	ReasonExpired          = "FiatTokenV2: authorization is expired"
	ReasonUsedOrCanceled   = "FiatTokenV2: authorization is used or canceled"
	ReasonInvalidSignature = "FiatTokenV2: invalid signature"
	ReasonCallerNotPayee   = "FiatTokenV2: caller must be the payee"
)

// CreationCode returns the contract's creation bytecode (constructor included, without its
// ABI-encoded argument).
func CreationCode() []byte {
	return common.FromHex(TestUSDCMetaData.Bin)
}

// Deploy sends the creation transaction for a token whose only minter is minter. The returned
// address is valid once the transaction is mined.
func Deploy(opts *bind.TransactOpts, backend bind.ContractBackend, minter common.Address) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, CreationCode(), backend, NewTestUSDC().PackConstructor(minter))
}

// Storage layout, for writing balances straight into a genesis allocation. The runtime code
// needs no other storage: name, symbol, minter and the EIP-712 domain live in the code.
var (
	// TotalSupplySlot holds totalSupply().
	TotalSupplySlot = common.BigToHash(big.NewInt(2))
	balancesSlot    = common.BigToHash(big.NewInt(0))
)

// BalanceSlot is the storage slot holding balanceOf(account).
func BalanceSlot(account common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(account.Bytes(), 32), balancesSlot.Bytes())
}
