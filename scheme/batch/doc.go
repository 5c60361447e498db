// Package batch implements the EVM binding of the x402 "batch-settlement" scheme: escrow channels
// on the x402BatchSettlement contract, paid with cumulative EIP-712 vouchers.
//
// A payer deposits into a channel once (an ERC-3009 receiveWithAuthorization or a Permit2
// transfer pulled by a deposit collector) and then signs, per request, a voucher whose
// maxClaimableAmount is the running total it has agreed to pay. The receiver claims the newest
// voucher of many channels in one transaction later, so the request path needs no chain call.
//
// The package is pure: EIP-712 hashing done directly on go-ethereum's keccak and secp256k1, the
// wire payloads exactly as the reference npm client and server emit them (strict parsers plus
// marshalers), the local checks a gateway runs on every request (Verifier) and the client side
// (Signer). It knows no HTTP server, no store and no RPC client; checks that need chain state
// (EIP-1271 wallets, token balances, deposit simulation) are left to the caller and reported as
// such.
package batch

import "github.com/ethereum/go-ethereum/common"

// Scheme is the x402 scheme name.
const Scheme = "batch-settlement"

// Canonical CREATE2 deployments, the same on every supported chain. The reference clients
// hard-code them, so a channel id computed by a stock client is bound to SettlementAddress.
var (
	SettlementAddress       = common.HexToAddress("0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003")
	ERC3009CollectorAddress = common.HexToAddress("0x4020806089470a89826cB9fB1f4059150b550004")
	Permit2CollectorAddress = common.HexToAddress("0x4020425FAf3B746C082C2f942b4E5159887B0005")
	// Permit2Address is Uniswap's Permit2, the verifying contract of Permit2 deposit signatures.
	Permit2Address = common.HexToAddress("0x000000000022D473030F116dDEE9F6B43aC78BA3")
)

// EIP-712 domain name and version of the settlement contract.
const (
	DomainName    = "x402 Batch Settlement"
	DomainVersion = "1"
)

// Bounds the contract enforces on ChannelConfig.WithdrawDelay, in seconds (15 minutes, 30 days).
const (
	MinWithdrawDelay = 900
	MaxWithdrawDelay = 2_592_000
)

// DefaultMinDepositMultiplier is how many request prices the reference server announces as
// extra.minDeposit when nothing else is configured.
const DefaultMinDepositMultiplier = 10

// Asset transfer methods a deposit can use (requirements extra.assetTransferMethod).
const (
	TransferEIP3009 = "eip3009"
	TransferPermit2 = "permit2"
)
