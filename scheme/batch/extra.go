package batch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// ChannelState is the channel snapshot the wire carries: in a corrective 402
// (extra.channelState), in PAYMENT-RESPONSE extra.channelState and in a facilitator's
// /verify extra (flat). Balance, TotalClaimed, WithdrawRequestedAt and RefundNonce mirror the
// chain; ChargedCumulativeAmount is the server's running charge total (nil omits it).
type ChannelState struct {
	ChannelID               common.Hash
	Balance                 *big.Int
	TotalClaimed            *big.Int
	WithdrawRequestedAt     uint64
	RefundNonce             *big.Int
	ChargedCumulativeAmount *big.Int
}

// VoucherState is the last voucher the server accepted, sent with a corrective 402 so the
// client can check it signed that amount before adopting the server's total.
type VoucherState struct {
	SignedMaxClaimable *big.Int
	Signature          []byte
}

type wireChannelState struct {
	ChannelID               string `json:"channelId"`
	Balance                 string `json:"balance"`
	TotalClaimed            string `json:"totalClaimed"`
	WithdrawRequestedAt     uint64 `json:"withdrawRequestedAt"`
	RefundNonce             string `json:"refundNonce"`
	ChargedCumulativeAmount string `json:"chargedCumulativeAmount,omitempty"`
}

type wireVoucherState struct {
	SignedMaxClaimable string `json:"signedMaxClaimable,omitempty"`
	Signature          string `json:"signature,omitempty"`
}

// MarshalJSON writes amounts as decimal strings and withdrawRequestedAt as a number, like the
// reference server.
func (s ChannelState) MarshalJSON() ([]byte, error) {
	w := wireChannelState{
		ChannelID: s.ChannelID.Hex(), Balance: orZero(s.Balance).String(), TotalClaimed: orZero(s.TotalClaimed).String(),
		WithdrawRequestedAt: s.WithdrawRequestedAt, RefundNonce: orZero(s.RefundNonce).String(),
	}
	if s.ChargedCumulativeAmount != nil {
		w.ChargedCumulativeAmount = s.ChargedCumulativeAmount.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON parses a snapshot. Unknown keys are ignored (servers may add some); known ones
// are checked. withdrawRequestedAt and refundNonce are accepted as number or decimal string,
// as the reference server reads them.
func (s *ChannelState) UnmarshalJSON(raw []byte) error {
	f := readObject(raw, "channelState", false)
	st := ChannelState{
		ChannelID:           f.channelID("channelId"),
		Balance:             f.amount("balance", bits128),
		TotalClaimed:        f.amount("totalClaimed", bits128),
		WithdrawRequestedAt: f.flexUint("withdrawRequestedAt"),
		RefundNonce:         f.flexBig("refundNonce"),
	}
	if f.has("chargedCumulativeAmount") {
		st.ChargedCumulativeAmount = f.amount("chargedCumulativeAmount", bits128)
	}
	if f.err != nil {
		return f.err
	}
	*s = st
	return nil
}

// MarshalJSON writes {"signedMaxClaimable":…,"signature":…}.
func (v VoucherState) MarshalJSON() ([]byte, error) {
	w := wireVoucherState{Signature: optionalHex(v.Signature)}
	if v.SignedMaxClaimable != nil {
		w.SignedMaxClaimable = v.SignedMaxClaimable.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON parses a voucher state; both members are optional.
func (v *VoucherState) UnmarshalJSON(raw []byte) error {
	f := readObject(raw, "voucherState", false)
	var vs VoucherState
	if f.has("signedMaxClaimable") {
		vs.SignedMaxClaimable = f.amount("signedMaxClaimable", bits128)
	}
	if f.has("signature") {
		vs.Signature = f.signature("signature")
	}
	if f.err != nil {
		return f.err
	}
	*v = vs
	return nil
}

// flexUint reads a non-negative integer given as a JSON number or a decimal string.
func (f *fields) flexUint(key string) uint64 {
	v := f.raw(key)
	if f.err != nil {
		return 0
	}
	if len(v) > 0 && v[0] == '"' {
		s := f.str(key)
		n, err := strconv.ParseUint(s, 10, 64)
		if f.err == nil && err != nil {
			f.fail("", key, "must be a non-negative integer")
		}
		return n
	}
	return f.number(key, 1<<63)
}

// flexBig reads a uint256 given as a decimal string or a JSON number.
func (f *fields) flexBig(key string) *big.Int {
	v := f.raw(key)
	if f.err != nil {
		return nil
	}
	if len(v) > 0 && v[0] == '"' {
		return f.amount(key, bits256)
	}
	return new(big.Int).SetUint64(f.number(key, 1<<63))
}

// RequirementsExtra is the scheme's part of PaymentRequirements.extra: the token's EIP-712
// domain (for ERC-3009 deposits), the server's channel parameters, the deposit hint and, on a
// corrective 402 only, the channel and voucher state.
type RequirementsExtra struct {
	Name                string
	Version             string
	ReceiverAuthorizer  common.Address
	WithdrawDelay       uint64
	MinDeposit          *big.Int // nil when absent
	AssetTransferMethod string   // "" means eip3009
	ChannelState        *ChannelState
	VoucherState        *VoucherState
}

// Map returns the extra object for x402.PaymentRequirements.
func (e RequirementsExtra) Map() map[string]any {
	m := map[string]any{
		"receiverAuthorizer": e.ReceiverAuthorizer.Hex(),
		"withdrawDelay":      e.WithdrawDelay,
	}
	if e.Name != "" || e.Version != "" {
		m["name"], m["version"] = e.Name, e.Version
	}
	if e.MinDeposit != nil {
		m["minDeposit"] = e.MinDeposit.String()
	}
	if e.AssetTransferMethod != "" {
		m["assetTransferMethod"] = e.AssetTransferMethod
	}
	if e.ChannelState != nil {
		m["channelState"] = *e.ChannelState
	}
	if e.VoucherState != nil {
		m["voucherState"] = *e.VoucherState
	}
	return m
}

// ParseRequirementsExtra reads a requirement's extra, whether it came off the wire (numbers as
// json.Number) or was built in Go. receiverAuthorizer must be a non-zero address; an absent
// withdrawDelay means MinWithdrawDelay, as the reference client assumes. Unknown keys are
// ignored. Failures carry invalid_payment_requirements.
func ParseRequirementsExtra(extra map[string]any) (*RequirementsExtra, error) {
	raw, err := json.Marshal(extra)
	if err != nil {
		return nil, x402.Fail(x402.ReasonInvalidPaymentRequirements, "extra is not JSON", err)
	}
	f := readObject(raw, "extra", false)
	e := &RequirementsExtra{ReceiverAuthorizer: f.address("receiverAuthorizer"), WithdrawDelay: MinWithdrawDelay}
	if f.err == nil && e.ReceiverAuthorizer == (common.Address{}) {
		f.fail("", "receiverAuthorizer", "must not be the zero address")
	}
	if f.has("withdrawDelay") {
		e.WithdrawDelay = f.number("withdrawDelay", maxUint40)
	}
	if f.has("name") {
		e.Name = f.str("name")
	}
	if f.has("version") {
		e.Version = f.str("version")
	}
	if f.has("minDeposit") {
		e.MinDeposit = f.amount("minDeposit", bits128)
	}
	if f.has("assetTransferMethod") {
		e.AssetTransferMethod = f.str("assetTransferMethod")
	}
	if f.has("channelState") {
		e.ChannelState = new(ChannelState)
		if err := e.ChannelState.UnmarshalJSON(f.raw("channelState")); err != nil {
			f.fail("", "channelState", "%v", err)
		}
	}
	if f.has("voucherState") {
		e.VoucherState = new(VoucherState)
		if err := e.VoucherState.UnmarshalJSON(f.raw("voucherState")); err != nil {
			f.fail("", "voucherState", "%v", err)
		}
	}
	if err := f.failure(x402.ReasonInvalidPaymentRequirements); err != nil {
		return nil, err
	}
	return e, nil
}

// Offer is what a server accepts as batch-settlement payment on one route: one token on one
// chain into one receiver, under the server's receiver authorizer and withdraw delay.
type Offer struct {
	Network            string // CAIP-2, e.g. "eip155:8453"
	Asset              common.Address
	Name, Version      string // the token's EIP-712 domain (ERC-3009 deposits)
	PayTo              common.Address
	ReceiverAuthorizer common.Address
	WithdrawDelay      uint64
	MinDeposit         *big.Int // nil: DefaultMinDepositMultiplier × price
	// EnforceMinDeposit refuses deposits below MinDepositFor(price) instead of only announcing
	// it (the reference server's enforceMinDeposit, off by default there too). Worth turning on
	// where the server pays deposit gas: it stops a payer from topping up by dust each request.
	EnforceMinDeposit   bool
	AssetTransferMethod string // "" (eip3009) or TransferPermit2
	MaxTimeoutSeconds   int64
}

// Validate reports configuration mistakes.
func (o Offer) Validate() error {
	var errs []error
	if _, err := evmsig.ChainIDFromNetwork(o.Network); err != nil {
		errs = append(errs, err)
	}
	if o.ReceiverAuthorizer == (common.Address{}) {
		errs = append(errs, errors.New("receiverAuthorizer must be set"))
	}
	if o.PayTo == (common.Address{}) || o.Asset == (common.Address{}) {
		errs = append(errs, errors.New("payTo and asset must be set"))
	}
	if o.WithdrawDelay < MinWithdrawDelay || o.WithdrawDelay > MaxWithdrawDelay {
		errs = append(errs, fmt.Errorf("withdrawDelay %d is outside [%d, %d]", o.WithdrawDelay, MinWithdrawDelay, MaxWithdrawDelay))
	}
	if o.AssetTransferMethod != "" && o.AssetTransferMethod != TransferEIP3009 && o.AssetTransferMethod != TransferPermit2 {
		errs = append(errs, fmt.Errorf("assetTransferMethod %q is not eip3009 or permit2", o.AssetTransferMethod))
	}
	if o.AssetTransferMethod != TransferPermit2 && (o.Name == "" || o.Version == "") {
		errs = append(errs, errors.New("ERC-3009 deposits need the token's EIP-712 name and version"))
	}
	if o.MinDeposit != nil && !fitsUint128(o.MinDeposit) {
		errs = append(errs, errors.New("minDeposit must fit in uint128"))
	}
	return errors.Join(errs...)
}

// MinDepositFor returns the deposit hint announced for price: the configured minimum (never
// below the price), else DefaultMinDepositMultiplier × price, as the reference server does.
func (o Offer) MinDepositFor(price *big.Int) *big.Int {
	if o.MinDeposit == nil {
		return new(big.Int).Mul(price, big.NewInt(DefaultMinDepositMultiplier))
	}
	if price.Cmp(o.MinDeposit) > 0 {
		return new(big.Int).Set(price)
	}
	return new(big.Int).Set(o.MinDeposit)
}

// Extra returns the requirement extra for price.
func (o Offer) Extra(price *big.Int) RequirementsExtra {
	return RequirementsExtra{
		Name: o.Name, Version: o.Version, ReceiverAuthorizer: o.ReceiverAuthorizer, WithdrawDelay: o.WithdrawDelay,
		MinDeposit: o.MinDepositFor(price), AssetTransferMethod: o.AssetTransferMethod,
	}
}

// Requirements returns the 402 accepts[] entry for price (atomic units).
func (o Offer) Requirements(price *big.Int) x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme: Scheme, Network: o.Network, Amount: price.String(), Asset: o.Asset.Hex(), PayTo: o.PayTo.Hex(),
		MaxTimeoutSeconds: o.MaxTimeoutSeconds, Extra: o.Extra(price).Map(),
	}
}

// Terms returns what the Verifier checks a payment for price against.
func (o Offer) Terms(price *big.Int) Terms {
	t := Terms{
		PayTo: o.PayTo, Asset: o.Asset, ReceiverAuthorizer: o.ReceiverAuthorizer, WithdrawDelay: o.WithdrawDelay,
		Price: price, TokenName: o.Name, TokenVersion: o.Version, AssetTransferMethod: o.AssetTransferMethod,
	}
	if o.EnforceMinDeposit {
		t.MinDeposit = o.MinDepositFor(price)
	}
	return t
}

// Corrective returns a copy of req whose extra also carries the channel and voucher state: the
// accepts[] entry of a corrective 402 (error invalid_batch_settlement_evm_cumulative_amount_mismatch).
// A nil voucher state is left out.
func Corrective(req x402.PaymentRequirements, state ChannelState, voucher *VoucherState) x402.PaymentRequirements {
	out := req
	out.Extra = make(map[string]any, len(req.Extra)+2)
	for k, v := range req.Extra {
		out.Extra[k] = v
	}
	out.Extra["channelState"] = state
	if voucher != nil {
		out.Extra["voucherState"] = *voucher
	}
	return out
}
