package escrow

import (
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/multicall3"
)

// Canonical addresses of the x402 batch-settlement contracts. They are the same on every chain
// the reference deployment covers, and stock x402 clients and facilitators use them and no
// other; the embedded dev chain puts our contracts there in its genesis.
var (
	BatchSettlementAddress         = common.HexToAddress("0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003")
	ERC3009DepositCollectorAddress = common.HexToAddress("0x4020806089470a89826cB9fB1f4059150b550004")
	// Multicall3Address is where viem and the x402 facilitator batch their reads.
	Multicall3Address = multicall3.Address
)

// The EIP-712 domain of BatchSettlement is {name: DomainName, version: DomainVersion, chainId,
// verifyingContract: the settlement contract}. Channel ids, vouchers, claim batches and refunds
// are all signed under it.
const (
	DomainName    = "x402 Batch Settlement"
	DomainVersion = "1"
)

// Bounds of a channel's withdrawDelay, in seconds, enforced on every deposit.
const (
	MinWithdrawDelay = 15 * 60
	MaxWithdrawDelay = 30 * 24 * 60 * 60
)

// Short names for the structs in the contract's ABI.
type (
	ChannelConfig = BatchSettlementChannelConfig
	Voucher       = BatchSettlementVoucher
	VoucherClaim  = BatchSettlementVoucherClaim
)

// BatchSettlementCreationCode returns the creation bytecode of BatchSettlement. Its constructor
// takes no arguments.
func BatchSettlementCreationCode() []byte {
	return common.FromHex(BatchSettlementMetaData.Bin)
}

// ERC3009DepositCollectorCreationCode returns the creation bytecode of ERC3009DepositCollector
// without its constructor argument; see ERC3009DepositCollectorInitCode.
func ERC3009DepositCollectorCreationCode() []byte {
	return common.FromHex(ERC3009DepositCollectorMetaData.Bin)
}

// ERC3009DepositCollectorInitCode returns the creation bytecode followed by the ABI-encoded
// settlement address: what a deployment, or a genesis builder running constructors, executes.
// The collector keeps the address as an immutable, so give the address the settlement contract
// will finally live at (BatchSettlementAddress on the dev chain).
func ERC3009DepositCollectorInitCode(settlement common.Address) []byte {
	return append(ERC3009DepositCollectorCreationCode(), NewERC3009DepositCollector().PackConstructor(settlement)...)
}

// DeployBatchSettlement sends the creation transaction of a BatchSettlement. The returned address
// is valid once the transaction is mined.
func DeployBatchSettlement(opts *bind.TransactOpts, backend bind.ContractBackend) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, BatchSettlementCreationCode(), backend, nil)
}

// DeployERC3009DepositCollector sends the creation transaction of a collector serving
// settlement.
func DeployERC3009DepositCollector(opts *bind.TransactOpts, backend bind.ContractBackend, settlement common.Address) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, ERC3009DepositCollectorCreationCode(), backend,
		NewERC3009DepositCollector().PackConstructor(settlement))
}
