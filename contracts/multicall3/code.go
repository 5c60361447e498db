package multicall3

import (
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Address is where Multicall3 lives on virtually every EVM chain, and where clients look for it.
var Address = common.HexToAddress("0xcA11bde05977b3631167028862bE2a173976CA11")

// CreationCode returns the contract's creation bytecode; the constructor takes no arguments.
// The runtime code has no immutables and needs no storage, so it can be copied to Address.
func CreationCode() []byte {
	return common.FromHex(Multicall3MetaData.Bin)
}

// Deploy sends the creation transaction. The returned address is valid once it is mined.
func Deploy(opts *bind.TransactOpts, backend bind.ContractBackend) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, CreationCode(), backend, nil)
}
