package batch

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Terms are the server's side of a payment on one route: the channel parameters it advertised
// and the price (the requirement's amount). TokenName and TokenVersion are the token's EIP-712
// domain, needed for ERC-3009 deposits. MinDeposit, when set, refuses smaller deposits.
// AssetTransferMethod is the deposit authorization the server takes: "" or TransferEIP3009 for
// ERC-3009 only, TransferPermit2 for either.
type Terms struct {
	PayTo               common.Address
	Asset               common.Address
	ReceiverAuthorizer  common.Address
	WithdrawDelay       uint64
	Price               *big.Int
	TokenName           string
	TokenVersion        string
	MinDeposit          *big.Int
	AssetTransferMethod string
}

// TermsFromRequirements reads Terms from the server's own requirement (never the client's copy).
// MinDeposit is left unset: the reference server only announces it.
func TermsFromRequirements(req x402.PaymentRequirements) (Terms, error) {
	e, err := ParseRequirementsExtra(req.Extra)
	if err != nil {
		return Terms{}, err
	}
	payTo, err1 := parseAddress(req.PayTo)
	asset, err2 := parseAddress(req.Asset)
	price, err3 := parseUint(req.Amount, bits128)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Terms{}, x402.Fail(x402.ReasonInvalidPaymentRequirements, "payTo, asset or amount is malformed", err)
	}
	return Terms{
		PayTo: payTo, Asset: asset, ReceiverAuthorizer: e.ReceiverAuthorizer, WithdrawDelay: e.WithdrawDelay,
		Price: price, TokenName: e.Name, TokenVersion: e.Version, AssetTransferMethod: e.AssetTransferMethod,
	}, nil
}

// Snapshot is what the server knows about a channel when a payment arrives: its own charged
// total and the on-chain state mirrored by a watcher. The caller supplies a snapshot fresh
// enough for its risk (the reference server trusts mirrored state for min(5 min,
// max(30 s, withdrawDelay/3))). With no record of the channel, ChargedCumulative is the on-chain
// TotalClaimed. Nil amounts count as zero.
type Snapshot struct {
	ChargedCumulative   *big.Int
	Balance             *big.Int
	TotalClaimed        *big.Int
	PendingWithdrawal   *big.Int // amount of a pending timed withdrawal, zero if none
	WithdrawRequestedAt uint64   // unix seconds, 0 if none
	RefundNonce         *big.Int
	SignedMaxClaimable  *big.Int // the last voucher the server accepted, for corrective 402s
	Signature           []byte
}

// ChannelState returns the wire snapshot of channel id, with the charged total.
func (s Snapshot) ChannelState(id common.Hash) ChannelState {
	return ChannelState{
		ChannelID: id, Balance: orZero(s.Balance), TotalClaimed: orZero(s.TotalClaimed),
		WithdrawRequestedAt: s.WithdrawRequestedAt, RefundNonce: orZero(s.RefundNonce),
		ChargedCumulativeAmount: orZero(s.ChargedCumulative),
	}
}

// VoucherState returns the last accepted voucher, or nil when the server holds none.
func (s Snapshot) VoucherState() *VoucherState {
	if len(s.Signature) == 0 || s.SignedMaxClaimable == nil {
		return nil
	}
	return &VoucherState{SignedMaxClaimable: s.SignedMaxClaimable, Signature: s.Signature}
}

// ErrOnchainCheck marks a payment whose every local check passed except signatures that only
// the chain can judge (EIP-1271 or ERC-6492 smart wallets). It is not the payer's fault:
// verify through a facilitator or an isValidSignature call. See *OnchainCheckError.
var ErrOnchainCheck = errors.New("batch: signature needs an on-chain EIP-1271 check")

// SignatureCheck is one signature left for the chain: Signer must accept Signature over Digest.
type SignatureCheck struct {
	What      string // "voucher" or "deposit authorization"
	Signer    common.Address
	Digest    common.Hash
	Signature []byte
}

// OnchainCheckError lists the signatures a local verification could not decide. The Verify
// methods return it together with a non-nil result.
type OnchainCheckError struct{ Checks []SignatureCheck }

func (e *OnchainCheckError) Error() string {
	parts := make([]string, len(e.Checks))
	for i, c := range e.Checks {
		parts[i] = c.What + " by " + c.Signer.Hex()
	}
	return ErrOnchainCheck.Error() + ": " + strings.Join(parts, ", ")
}

func (e *OnchainCheckError) Unwrap() error { return ErrOnchainCheck }

// CumulativeMismatchError is the corrective-402 case: the voucher's maxClaimableAmount is not
// the server's charged total plus the price. It carries what the corrective 402 needs and
// unwraps to an *x402.Error with reason invalid_batch_settlement_evm_cumulative_amount_mismatch.
type CumulativeMismatchError struct {
	Expected *big.Int      // what the voucher should have said
	Got      *big.Int      // what it said
	State    ChannelState  // for extra.channelState
	Voucher  *VoucherState // for extra.voucherState; nil when the server has none
}

func (e *CumulativeMismatchError) Error() string { return e.reason().Error() }

func (e *CumulativeMismatchError) Unwrap() error { return e.reason() }

func (e *CumulativeMismatchError) reason() *x402.Error {
	return x402.Failf(x402.ReasonBatchCumulativeAmountMismatch,
		"voucher maxClaimableAmount %s does not match the channel's charged total plus price (%s)", e.Got, e.Expected)
}

// Corrective returns req enriched with this channel's state, for the corrective 402.
func (e *CumulativeMismatchError) Corrective(req x402.PaymentRequirements) x402.PaymentRequirements {
	return Corrective(req, e.State, e.Voucher)
}

// VerifierConfig configures NewVerifier.
type VerifierConfig struct {
	Network    string           // CAIP-2 network the verifier serves
	Settlement common.Address   // settlement contract; zero means SettlementAddress
	CacheSize  int              // channel ids kept per cache generation; 0 means DefaultIDCacheSize
	Now        func() time.Time // deposit authorization windows; default time.Now
}

// DepositValidityMargin is how long a deposit authorization must outlive verification so the
// deposit transaction can still land (the reference facilitator uses 6 s).
const DepositValidityMargin = 6 * time.Second

// Verifier runs the local checks of batch-settlement payments for one chain. It needs no
// chain access and no store; the caller passes the channel snapshot. It is safe for
// concurrent use.
type Verifier struct {
	network    string
	chainID    *big.Int
	separator  common.Hash
	permit2Sep common.Hash
	ids        *idCache
	now        func() time.Time
}

// NewVerifier builds a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	id, err := evmsig.ChainIDFromNetwork(cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	d := SettlementDomain(id)
	if cfg.Settlement != (common.Address{}) {
		d.VerifyingContract = cfg.Settlement
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Verifier{
		network: cfg.Network, chainID: id, separator: d.Separator(), permit2Sep: Permit2Separator(id),
		ids: newIDCache(cfg.CacheSize), now: now,
	}, nil
}

// Separator is the settlement domain separator of the verifier's chain.
func (v *Verifier) Separator() common.Hash { return v.separator }

// ChannelID returns the channel id of c, hashing each config once while it stays cached.
func (v *Verifier) ChannelID(c ChannelConfig) common.Hash {
	return v.ids.lookup(c, func(c ChannelConfig) common.Hash { return c.ChannelID(v.separator) })
}

// Verified is a payment that passed the local checks.
type Verified struct {
	ChannelID common.Hash
	Payer     common.Address
	Payload   *Payload
}

// checkNext checks the payload's channel against the terms and that its voucher is the next
// one: maxClaimable == charged + price. It returns the recomputed channel id.
func (v *Verifier) checkNext(t Terms, s Snapshot, p *Payload) (common.Hash, error) {
	id, err := v.checkChannel(t, p)
	if err != nil {
		return id, err
	}
	expected := new(big.Int).Add(orZero(s.ChargedCumulative), orZero(t.Price))
	return id, checkCumulative(id, s, p, expected)
}

// VerifyVoucher checks a voucher payload against the server's terms and channel snapshot:
// the recomputed channel id, the config against the terms, the cumulative rule
// (maxClaimable == charged + price, else *CumulativeMismatchError), funds
// (totalClaimed < maxClaimable <= balance − pending withdrawal) and the payer authorizer's
// signature. With a zero payerAuthorizer it returns the result and an *OnchainCheckError.
func (v *Verifier) VerifyVoucher(t Terms, s Snapshot, p *Payload) (*Verified, error) {
	if err := expectPayload(p, TypeVoucher); err != nil {
		return nil, err
	}
	id, err := v.checkNext(t, s, p)
	if err != nil {
		return nil, err
	}
	if orZero(s.Balance).Sign() == 0 {
		return nil, x402.Failf(x402.ReasonBatchChannelNotFound, "channel %s has no balance", id.Hex())
	}
	if err := checkFunds(s, p, nil); err != nil {
		return nil, err
	}
	return v.finish(id, p, v.voucherCheck(p))
}

// VerifyRefund checks a cooperative refund request: the same channel checks, a zero-charge
// voucher (maxClaimable == charged, else *CumulativeMismatchError), totalClaimed <= maxClaimable
// <= balance, something left to refund, and the voucher signature.
func (v *Verifier) VerifyRefund(t Terms, s Snapshot, p *Payload) (*Verified, error) {
	if err := expectPayload(p, TypeRefund); err != nil {
		return nil, err
	}
	id, err := v.checkChannel(t, p)
	if err != nil {
		return nil, err
	}
	if err := checkCumulative(id, s, p, orZero(s.ChargedCumulative)); err != nil {
		return nil, err
	}
	balance, max := orZero(s.Balance), p.Voucher.MaxClaimableAmount
	if balance.Sign() == 0 {
		return nil, x402.Failf(x402.ReasonBatchChannelNotFound, "channel %s has no balance", id.Hex())
	}
	if max.Cmp(balance) > 0 {
		return nil, x402.Failf(x402.ReasonBatchCumulativeExceedsBalance, "maxClaimableAmount %s exceeds the balance %s", max, balance)
	}
	if max.Cmp(orZero(s.TotalClaimed)) < 0 {
		return nil, x402.Failf(x402.ReasonBatchCumulativeBelowClaimed, "maxClaimableAmount %s is below the claimed total %s", max, orZero(s.TotalClaimed))
	}
	if balance.Cmp(max) <= 0 {
		return nil, x402.Failf(x402.ReasonBatchRefundNoBalance, "nothing is left to refund")
	}
	return v.finish(id, p, v.voucherCheck(p))
}

func expectPayload(p *Payload, want PayloadType) error {
	if p == nil || p.Type != want {
		return x402.Failf(x402.ReasonBatchPayloadType, "expected a %s payload", want)
	}
	if !fitsUint128(p.Voucher.MaxClaimableAmount) {
		return x402.Failf(payloadReasons[want], "voucher.maxClaimableAmount is missing or out of range")
	}
	return nil
}

// CheckChannel runs the cheapest checks alone: the payload's channel id against its config, and
// the config against the terms. A server runs it before it looks a channel up, so that foreign
// or forged configs never cost a store or chain read.
func (v *Verifier) CheckChannel(t Terms, p *Payload) (common.Hash, error) {
	return v.checkChannel(t, p)
}

// checkChannel recomputes the channel id and compares the config with the terms.
func (v *Verifier) checkChannel(t Terms, p *Payload) (common.Hash, error) {
	c := p.ChannelConfig
	id := v.ChannelID(c)
	switch {
	case id != p.Voucher.ChannelID:
		return id, x402.Failf(x402.ReasonBatchChannelIDMismatch, "channelConfig hashes to %s, not %s", id.Hex(), p.Voucher.ChannelID.Hex())
	case c.Receiver != t.PayTo:
		return id, x402.Failf(x402.ReasonBatchReceiverMismatch, "channel receiver %s is not payTo %s", c.Receiver.Hex(), t.PayTo.Hex())
	case c.ReceiverAuthorizer == (common.Address{}) || c.ReceiverAuthorizer != t.ReceiverAuthorizer:
		return id, x402.Failf(x402.ReasonBatchReceiverAuthorizerMismatch, "channel receiverAuthorizer %s is not %s", c.ReceiverAuthorizer.Hex(), t.ReceiverAuthorizer.Hex())
	case c.Token != t.Asset:
		return id, x402.Failf(x402.ReasonBatchTokenMismatch, "channel token %s is not the asset %s", c.Token.Hex(), t.Asset.Hex())
	case c.WithdrawDelay != t.WithdrawDelay:
		return id, x402.Failf(x402.ReasonBatchWithdrawDelayMismatch, "channel withdrawDelay %d is not %d", c.WithdrawDelay, t.WithdrawDelay)
	case c.WithdrawDelay < MinWithdrawDelay || c.WithdrawDelay > MaxWithdrawDelay:
		return id, x402.Failf(x402.ReasonBatchWithdrawDelayOutOfRange, "withdrawDelay %d is outside [%d, %d]", c.WithdrawDelay, MinWithdrawDelay, MaxWithdrawDelay)
	}
	return id, nil
}

func checkCumulative(id common.Hash, s Snapshot, p *Payload, expected *big.Int) error {
	if p.Voucher.MaxClaimableAmount.Cmp(expected) == 0 {
		return nil
	}
	return &CumulativeMismatchError{
		Expected: expected, Got: p.Voucher.MaxClaimableAmount,
		State: s.ChannelState(id), Voucher: s.VoucherState(),
	}
}

// checkFunds enforces totalClaimed < maxClaimable <= balance + deposit − pendingWithdrawal. The
// pending withdrawal is subtracted because the payer may take it once the delay passes.
func checkFunds(s Snapshot, p *Payload, deposit *big.Int) error {
	max := p.Voucher.MaxClaimableAmount
	spendable := new(big.Int).Add(orZero(s.Balance), orZero(deposit))
	spendable.Sub(spendable, orZero(s.PendingWithdrawal))
	if max.Cmp(spendable) > 0 {
		return x402.Failf(x402.ReasonBatchCumulativeExceedsBalance,
			"maxClaimableAmount %s exceeds what the channel can pay (%s after pending withdrawals)", max, spendable)
	}
	if claimed := orZero(s.TotalClaimed); max.Cmp(claimed) <= 0 {
		return x402.Failf(x402.ReasonBatchCumulativeBelowClaimed, "maxClaimableAmount %s is not above the claimed total %s", max, claimed)
	}
	return nil
}

// voucherCheck verifies the voucher signature locally, or returns the check the chain must do.
func (v *Verifier) voucherCheck(p *Payload) localSig {
	c := p.ChannelConfig
	digest := p.Voucher.Voucher().Digest(v.separator)
	if c.PayerAuthorizer == (common.Address{}) {
		return localSig{pending: &SignatureCheck{What: "voucher", Signer: c.Payer, Digest: digest, Signature: p.Voucher.Signature}}
	}
	signer, err := evmsig.RecoverSigner(digest, p.Voucher.Signature)
	if err != nil {
		return localSig{err: x402.Fail(x402.ReasonBatchVoucherSignature, "voucher signature is not a valid ECDSA signature", err)}
	}
	if signer != c.PayerAuthorizer {
		return localSig{err: x402.Failf(x402.ReasonBatchVoucherSignature, "voucher is not signed by payerAuthorizer %s", c.PayerAuthorizer.Hex())}
	}
	return localSig{}
}

// localSig is the outcome of one signature check: an error, a check left for the chain, or
// neither.
type localSig struct {
	err     error
	pending *SignatureCheck
}

func (v *Verifier) finish(id common.Hash, p *Payload, sigs ...localSig) (*Verified, error) {
	var pending []SignatureCheck
	for _, s := range sigs {
		if s.err != nil {
			return nil, s.err
		}
		if s.pending != nil {
			pending = append(pending, *s.pending)
		}
	}
	out := &Verified{ChannelID: id, Payer: p.ChannelConfig.Payer, Payload: p}
	if len(pending) > 0 {
		return out, &OnchainCheckError{Checks: pending}
	}
	return out, nil
}
