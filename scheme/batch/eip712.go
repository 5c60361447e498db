package batch

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
)

// Type hashes of every EIP-712 struct the scheme signs. Distinct types keep a signature for one
// from being replayed as another.
var (
	domainNoVersionHash   = typeHash("EIP712Domain(string name,uint256 chainId,address verifyingContract)")
	channelConfigTypeHash = typeHash("ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)")
	voucherTypeHash       = typeHash("Voucher(bytes32 channelId,uint128 maxClaimableAmount)")
	claimEntryTypeHash    = typeHash("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)")
	claimBatchTypeHash    = typeHash("ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)")
	refundTypeHash        = typeHash("Refund(bytes32 channelId,uint256 nonce,uint128 amount)")
	receiveTypeHash       = typeHash("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
	// Referenced struct types follow the primary type in alphabetical order, as EIP-712 requires.
	permitWitnessTypeHash    = typeHash("PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,DepositWitness witness)DepositWitness(bytes32 channelId)TokenPermissions(address token,uint256 amount)")
	tokenPermissionsTypeHash = typeHash("TokenPermissions(address token,uint256 amount)")
	depositWitnessTypeHash   = typeHash("DepositWitness(bytes32 channelId)")
	permit2NameHash          = crypto.Keccak256Hash([]byte("Permit2"))
)

func typeHash(s string) common.Hash { return crypto.Keccak256Hash([]byte(s)) }

// Domain is an EIP-712 domain with all four common fields (the settlement contract's and an
// ERC-3009 token's). Permit2's domain has no version; see Permit2Separator.
type Domain = evmsig.Domain

// SettlementDomain is the domain of the canonical settlement contract on chainID.
func SettlementDomain(chainID *big.Int) Domain {
	return Domain{Name: DomainName, Version: DomainVersion, ChainID: chainID, VerifyingContract: SettlementAddress}
}

// Permit2Separator returns the separator of Permit2's domain {name "Permit2", chainId,
// verifyingContract}.
func Permit2Separator(chainID *big.Int) common.Hash {
	var buf [4 * 32]byte
	copy(buf[0:], domainNoVersionHash[:])
	copy(buf[32:], permit2NameHash[:])
	evmsig.PutWord(buf[64:], chainID)
	evmsig.PutAddress(buf[96:], Permit2Address)
	return crypto.Keccak256Hash(buf[:])
}

// ChannelConfig is the immutable identity of a channel. WithdrawDelay is a uint40 on chain.
type ChannelConfig struct {
	Payer              common.Address
	PayerAuthorizer    common.Address // voucher signer; zero means the payer signs via EIP-1271
	Receiver           common.Address
	ReceiverAuthorizer common.Address
	Token              common.Address
	WithdrawDelay      uint64
	Salt               common.Hash
}

// StructHash returns hashStruct(ChannelConfig).
func (c ChannelConfig) StructHash() common.Hash {
	var buf [8 * 32]byte
	copy(buf[0:], channelConfigTypeHash[:])
	evmsig.PutAddress(buf[32:], c.Payer)
	evmsig.PutAddress(buf[64:], c.PayerAuthorizer)
	evmsig.PutAddress(buf[96:], c.Receiver)
	evmsig.PutAddress(buf[128:], c.ReceiverAuthorizer)
	evmsig.PutAddress(buf[160:], c.Token)
	putUint64(buf[192:], c.WithdrawDelay)
	copy(buf[224:], c.Salt[:])
	return crypto.Keccak256Hash(buf[:])
}

// ChannelID is the channel's identifier: the full EIP-712 digest of the config under the
// settlement domain (not a plain hash of the struct), which binds it to chain and contract.
func (c ChannelConfig) ChannelID(settlementSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(settlementSeparator, c.StructHash())
}

// Voucher is the payer's cumulative promise: the receiver may claim up to MaxClaimableAmount
// (a uint128) from the channel in total.
type Voucher struct {
	ChannelID          common.Hash
	MaxClaimableAmount *big.Int
}

// StructHash returns hashStruct(Voucher).
func (v Voucher) StructHash() common.Hash {
	var buf [3 * 32]byte
	copy(buf[0:], voucherTypeHash[:])
	copy(buf[32:], v.ChannelID[:])
	evmsig.PutWord(buf[64:], v.MaxClaimableAmount)
	return crypto.Keccak256Hash(buf[:])
}

// Digest returns the EIP-712 digest the payer authorizer signs.
func (v Voucher) Digest(settlementSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(settlementSeparator, v.StructHash())
}

// ClaimEntry is one row of a receiver-authorizer ClaimBatch signature.
type ClaimEntry struct {
	ChannelID          common.Hash
	MaxClaimableAmount *big.Int
	TotalClaimed       *big.Int
}

// StructHash returns hashStruct(ClaimEntry).
func (e ClaimEntry) StructHash() common.Hash {
	var buf [4 * 32]byte
	copy(buf[0:], claimEntryTypeHash[:])
	copy(buf[32:], e.ChannelID[:])
	evmsig.PutWord(buf[64:], e.MaxClaimableAmount)
	evmsig.PutWord(buf[96:], e.TotalClaimed)
	return crypto.Keccak256Hash(buf[:])
}

// ClaimBatch is the message claimWithSignature's receiver-authorizer signature covers.
type ClaimBatch []ClaimEntry

// StructHash returns hashStruct(ClaimBatch): an array of structs is encoded as the keccak of
// the concatenated struct hashes of its elements.
func (b ClaimBatch) StructHash() common.Hash {
	rows := make([]byte, 0, 32*len(b))
	for _, e := range b {
		h := e.StructHash()
		rows = append(rows, h[:]...)
	}
	var buf [2 * 32]byte
	copy(buf[0:], claimBatchTypeHash[:])
	copy(buf[32:], crypto.Keccak256(rows))
	return crypto.Keccak256Hash(buf[:])
}

// Digest returns the EIP-712 digest the receiver authorizer signs.
func (b ClaimBatch) Digest(settlementSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(settlementSeparator, b.StructHash())
}

// Refund authorizes refundWithSignature; Nonce must equal the channel's on-chain refundNonce.
type Refund struct {
	ChannelID common.Hash
	Nonce     *big.Int // uint256
	Amount    *big.Int // uint128
}

// StructHash returns hashStruct(Refund).
func (r Refund) StructHash() common.Hash {
	var buf [4 * 32]byte
	copy(buf[0:], refundTypeHash[:])
	copy(buf[32:], r.ChannelID[:])
	evmsig.PutWord(buf[64:], r.Nonce)
	evmsig.PutWord(buf[96:], r.Amount)
	return crypto.Keccak256Hash(buf[:])
}

// Digest returns the EIP-712 digest the receiver authorizer signs.
func (r Refund) Digest(settlementSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(settlementSeparator, r.StructHash())
}

// ReceiveAuthorization is the ERC-3009 ReceiveWithAuthorization a deposit carries, signed by
// the payer under the token's domain. For deposits To is ERC3009CollectorAddress and Nonce is
// DepositNonce(channelID, salt).
type ReceiveAuthorization struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Nonce       common.Hash
}

// StructHash returns hashStruct(ReceiveWithAuthorization).
func (a ReceiveAuthorization) StructHash() common.Hash {
	return evmsig.AuthorizationStructHash(receiveTypeHash, a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce)
}

// Digest returns the EIP-712 digest under the token's domain separator.
func (a ReceiveAuthorization) Digest(tokenSeparator common.Hash) common.Hash {
	return evmsig.TypedDigest(tokenSeparator, a.StructHash())
}

// DepositNonce is the ERC-3009 nonce of a deposit: keccak256(abi.encode(channelId, salt)). It
// ties the token authorization to one channel, so it cannot fund another.
func DepositNonce(channelID, salt common.Hash) common.Hash {
	return crypto.Keccak256Hash(channelID[:], salt[:])
}

// Permit2Transfer is the PermitWitnessTransferFrom a Permit2 deposit signs, with the channel id
// as witness. Spender is Permit2CollectorAddress.
type Permit2Transfer struct {
	Token     common.Address
	Amount    *big.Int
	Spender   common.Address
	Nonce     *big.Int
	Deadline  *big.Int
	ChannelID common.Hash
}

// StructHash returns hashStruct(PermitWitnessTransferFrom).
func (p Permit2Transfer) StructHash() common.Hash {
	var perm [3 * 32]byte
	copy(perm[0:], tokenPermissionsTypeHash[:])
	evmsig.PutAddress(perm[32:], p.Token)
	evmsig.PutWord(perm[64:], p.Amount)
	var wit [2 * 32]byte
	copy(wit[0:], depositWitnessTypeHash[:])
	copy(wit[32:], p.ChannelID[:])
	var buf [6 * 32]byte
	copy(buf[0:], permitWitnessTypeHash[:])
	copy(buf[32:], crypto.Keccak256(perm[:]))
	evmsig.PutAddress(buf[64:], p.Spender)
	evmsig.PutWord(buf[96:], p.Nonce)
	evmsig.PutWord(buf[128:], p.Deadline)
	copy(buf[160:], crypto.Keccak256(wit[:]))
	return crypto.Keccak256Hash(buf[:])
}

// Digest returns the EIP-712 digest under Permit2Separator(chainID).
func (p Permit2Transfer) Digest(permit2Separator common.Hash) common.Hash {
	return evmsig.TypedDigest(permit2Separator, p.StructHash())
}

func putUint64(dst []byte, v uint64) {
	clear(dst[:32])
	for i := 0; i < 8; i++ {
		dst[31-i] = byte(v >> (8 * i))
	}
}
