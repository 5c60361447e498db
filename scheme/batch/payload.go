package batch

import (
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// PayloadType is the payload.type discriminator.
type PayloadType string

// Client payloads (deposit, voucher, refund) travel in PAYMENT-SIGNATURE; the server sends the
// others (claim, settle and a completed refund) to a facilitator's /settle.
const (
	TypeDeposit PayloadType = "deposit"
	TypeVoucher PayloadType = "voucher"
	TypeRefund  PayloadType = "refund"
	TypeClaim   PayloadType = "claim"
	TypeSettle  PayloadType = "settle"
)

// SignedVoucher is a voucher with the payer authorizer's signature, as carried in payloads.
type SignedVoucher struct {
	ChannelID          common.Hash
	MaxClaimableAmount *big.Int
	Signature          []byte
}

// Voucher returns the signed message.
func (v SignedVoucher) Voucher() Voucher {
	return Voucher{ChannelID: v.ChannelID, MaxClaimableAmount: v.MaxClaimableAmount}
}

// ERC3009Authorization is a deposit's receiveWithAuthorization signature and window. The
// authorization's nonce is DepositNonce(channelId, Salt), its to the ERC-3009 collector.
type ERC3009Authorization struct {
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Salt        common.Hash
	Signature   []byte
}

// Permit2Authorization is a deposit's Permit2 witness transfer and its signature.
type Permit2Authorization struct {
	From      common.Address
	Token     common.Address
	Amount    *big.Int
	Spender   common.Address
	Nonce     *big.Int
	Deadline  *big.Int
	ChannelID common.Hash // the witness
	Signature []byte
}

// Transfer returns the signed Permit2 message.
func (a Permit2Authorization) Transfer() Permit2Transfer {
	return Permit2Transfer{Token: a.Token, Amount: a.Amount, Spender: a.Spender, Nonce: a.Nonce, Deadline: a.Deadline, ChannelID: a.ChannelID}
}

// Deposit is the funding part of a deposit payload: exactly one authorization is set.
type Deposit struct {
	Amount  *big.Int // uint128, > 0
	ERC3009 *ERC3009Authorization
	Permit2 *Permit2Authorization
}

// Payload is a parsed client payload: a deposit (with the first or next voucher), a voucher,
// or a cooperative refund request (a zero-charge voucher).
type Payload struct {
	Type          PayloadType
	ChannelConfig ChannelConfig
	Voucher       SignedVoucher
	Deposit       *Deposit // TypeDeposit only
	RefundAmount  *big.Int // TypeRefund only; nil asks for everything refundable
}

var (
	payloadKeys = map[PayloadType][]string{
		TypeDeposit: {"type", "channelConfig", "voucher", "deposit"},
		TypeVoucher: {"type", "channelConfig", "voucher"},
		TypeRefund:  {"type", "channelConfig", "voucher", "amount"},
	}
	payloadReasons = map[PayloadType]x402.Reason{
		TypeDeposit: x402.ReasonBatchDepositPayload,
		TypeVoucher: x402.ReasonBatchVoucherPayload,
		TypeRefund:  x402.ReasonBatchRefundPayload,
		TypeClaim:   x402.ReasonBatchClaimPayload,
		TypeSettle:  x402.ReasonBatchSettlePayload,
	}
	configKeys = []string{"payer", "payerAuthorizer", "receiver", "receiverAuthorizer", "token", "withdrawDelay", "salt"}
)

// PayloadTypeOf reads only payload.type, for dispatch. A payload that is not an object or has
// no string type fails with invalid_batch_settlement_evm_payload_type.
func PayloadTypeOf(raw json.RawMessage) (PayloadType, error) {
	f := readObject(raw, "payload", false)
	t := PayloadType(f.str("type"))
	if f.err != nil {
		return "", x402.Fail(x402.ReasonBatchPayloadType, f.err.Error(), nil)
	}
	if _, ok := payloadReasons[t]; !ok {
		return "", x402.Failf(x402.ReasonBatchPayloadType, "payload.type %q is not a batch-settlement payload", t)
	}
	return t, nil
}

// ParsePayload parses a client payload (payload of the PAYMENT-SIGNATURE envelope). It is
// strict: exact key spelling, no unknown or duplicate keys, addresses as 20-byte hex of any
// case, amounts as decimal strings within their on-chain widths. Every failure is an
// *x402.Error whose reason names the payload kind (…_voucher_payload, …_deposit_payload, …),
// or a more specific one (…_channel_id_invalid, …_refund_amount_invalid,
// …_erc3009_authorization_required).
func ParsePayload(raw json.RawMessage) (*Payload, error) {
	f := readObject(raw, "payload", false)
	t := PayloadType(f.str("type"))
	if f.err != nil {
		return nil, x402.Fail(x402.ReasonBatchPayloadType, f.err.Error(), nil)
	}
	keys, ok := payloadKeys[t]
	if !ok {
		return nil, x402.Failf(x402.ReasonBatchPayloadType, "payload.type %q is not a client payload", t)
	}
	f.only(keys...)
	p := &Payload{Type: t}
	p.ChannelConfig = parseConfig(f, "channelConfig")
	p.Voucher = parseVoucher(f)
	switch t {
	case TypeDeposit:
		p.Deposit = parseDeposit(f)
	case TypeRefund:
		if f.err == nil && f.has("amount") {
			p.RefundAmount = f.amount("amount", bits128)
			if f.err == nil && p.RefundAmount.Sign() == 0 {
				f.fail("", "amount", "must be positive")
			}
			if f.err != nil {
				f.reason = x402.ReasonBatchRefundAmountInvalid
			}
		}
	}
	if err := f.failure(payloadReasons[t]); err != nil {
		return nil, err
	}
	return p, nil
}

func parseConfig(parent *fields, key string) ChannelConfig {
	f := parent.object(key, true, configKeys...)
	c := ChannelConfig{
		Payer:              f.address("payer"),
		PayerAuthorizer:    f.address("payerAuthorizer"),
		Receiver:           f.address("receiver"),
		ReceiverAuthorizer: f.address("receiverAuthorizer"),
		Token:              f.address("token"),
		WithdrawDelay:      f.number("withdrawDelay", maxUint40),
		Salt:               f.hash("salt"),
	}
	parent.adopt(f)
	return c
}

func parseVoucher(parent *fields) SignedVoucher {
	f := parent.object("voucher", true, "channelId", "maxClaimableAmount", "signature")
	v := SignedVoucher{
		ChannelID:          f.channelID("channelId"),
		MaxClaimableAmount: f.amount("maxClaimableAmount", bits128),
		Signature:          f.signature("signature"),
	}
	parent.adopt(f)
	return v
}

func parseDeposit(parent *fields) *Deposit {
	f := parent.object("deposit", true, "amount", "authorization")
	d := &Deposit{Amount: f.amount("amount", bits128)}
	if f.err == nil && d.Amount.Sign() == 0 {
		f.fail("", "amount", "must be positive")
	}
	auth := f.object("authorization", true, "erc3009Authorization", "permit2Authorization")
	switch {
	case auth.has("erc3009Authorization") && auth.has("permit2Authorization"):
		auth.fail("", "erc3009Authorization", "and permit2Authorization are mutually exclusive")
	case auth.has("erc3009Authorization"):
		d.ERC3009 = parseERC3009(auth)
	case auth.has("permit2Authorization"):
		d.Permit2 = parsePermit2(auth)
	default:
		auth.fail(x402.ReasonBatchERC3009AuthorizationRequired, "erc3009Authorization", "is missing")
	}
	f.adopt(auth)
	parent.adopt(f)
	return d
}

func parseERC3009(parent *fields) *ERC3009Authorization {
	f := parent.object("erc3009Authorization", true, "validAfter", "validBefore", "salt", "signature")
	a := &ERC3009Authorization{
		ValidAfter:  f.amount("validAfter", bits256),
		ValidBefore: f.amount("validBefore", bits256),
		Salt:        f.hash("salt"),
		Signature:   f.signature("signature"),
	}
	parent.adopt(f)
	return a
}

func parsePermit2(parent *fields) *Permit2Authorization {
	f := parent.object("permit2Authorization", true, "from", "permitted", "spender", "nonce", "deadline", "witness", "signature")
	a := &Permit2Authorization{From: f.address("from")}
	perm := f.object("permitted", true, "token", "amount")
	a.Token = perm.address("token")
	a.Amount = perm.amount("amount", bits256)
	f.adopt(perm)
	a.Spender = f.address("spender")
	a.Nonce = f.amount("nonce", bits256)
	a.Deadline = f.amount("deadline", bits256)
	wit := f.object("witness", true, "channelId")
	a.ChannelID = wit.channelID("channelId")
	f.adopt(wit)
	a.Signature = f.signature("signature")
	parent.adopt(f)
	return a
}

// Wire shapes, fields in the order the reference client writes them.
type (
	wireConfig struct {
		Payer              string `json:"payer"`
		PayerAuthorizer    string `json:"payerAuthorizer"`
		Receiver           string `json:"receiver"`
		ReceiverAuthorizer string `json:"receiverAuthorizer"`
		Token              string `json:"token"`
		WithdrawDelay      uint64 `json:"withdrawDelay"`
		Salt               string `json:"salt"`
	}
	wireVoucher struct {
		ChannelID          string `json:"channelId"`
		MaxClaimableAmount string `json:"maxClaimableAmount"`
		Signature          string `json:"signature"`
	}
	wireERC3009 struct {
		ValidAfter  string `json:"validAfter"`
		ValidBefore string `json:"validBefore"`
		Salt        string `json:"salt"`
		Signature   string `json:"signature"`
	}
	wirePermitted struct {
		Token  string `json:"token"`
		Amount string `json:"amount"`
	}
	wireWitness struct {
		ChannelID string `json:"channelId"`
	}
	wirePermit2 struct {
		From      string        `json:"from"`
		Permitted wirePermitted `json:"permitted"`
		Spender   string        `json:"spender"`
		Nonce     string        `json:"nonce"`
		Deadline  string        `json:"deadline"`
		Witness   wireWitness   `json:"witness"`
		Signature string        `json:"signature"`
	}
	wireAuthorization struct {
		ERC3009 *wireERC3009 `json:"erc3009Authorization,omitempty"`
		Permit2 *wirePermit2 `json:"permit2Authorization,omitempty"`
	}
	wireDeposit struct {
		Amount        string            `json:"amount"`
		Authorization wireAuthorization `json:"authorization"`
	}
	wirePayload struct {
		Type          PayloadType  `json:"type"`
		ChannelConfig wireConfig   `json:"channelConfig"`
		Voucher       wireVoucher  `json:"voucher"`
		Deposit       *wireDeposit `json:"deposit,omitempty"`
		Amount        string       `json:"amount,omitempty"`
	}
)

func (c ChannelConfig) wire() wireConfig {
	return wireConfig{
		Payer: c.Payer.Hex(), PayerAuthorizer: c.PayerAuthorizer.Hex(), Receiver: c.Receiver.Hex(),
		ReceiverAuthorizer: c.ReceiverAuthorizer.Hex(), Token: c.Token.Hex(), WithdrawDelay: c.WithdrawDelay,
		Salt: c.Salt.Hex(),
	}
}

// MarshalJSON writes the wire form (checksummed addresses, lower-case hex, decimal amounts).
func (c ChannelConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.wire()) }

func (v SignedVoucher) wire() wireVoucher {
	return wireVoucher{ChannelID: v.ChannelID.Hex(), MaxClaimableAmount: orZero(v.MaxClaimableAmount).String(), Signature: hexBytes(v.Signature)}
}

func (d *Deposit) wire() *wireDeposit {
	w := &wireDeposit{Amount: orZero(d.Amount).String()}
	if a := d.ERC3009; a != nil {
		w.Authorization.ERC3009 = &wireERC3009{
			ValidAfter: orZero(a.ValidAfter).String(), ValidBefore: orZero(a.ValidBefore).String(),
			Salt: a.Salt.Hex(), Signature: hexBytes(a.Signature),
		}
	}
	if a := d.Permit2; a != nil {
		w.Authorization.Permit2 = &wirePermit2{
			From: a.From.Hex(), Permitted: wirePermitted{Token: a.Token.Hex(), Amount: orZero(a.Amount).String()},
			Spender: a.Spender.Hex(), Nonce: orZero(a.Nonce).String(), Deadline: orZero(a.Deadline).String(),
			Witness: wireWitness{ChannelID: a.ChannelID.Hex()}, Signature: hexBytes(a.Signature),
		}
	}
	return w
}

// MarshalJSON writes the payload exactly in the reference client's shape.
func (p Payload) MarshalJSON() ([]byte, error) {
	w := wirePayload{Type: p.Type, ChannelConfig: p.ChannelConfig.wire(), Voucher: p.Voucher.wire()}
	if p.Type == TypeDeposit && p.Deposit != nil {
		w.Deposit = p.Deposit.wire()
	}
	if p.Type == TypeRefund && p.RefundAmount != nil {
		w.Amount = p.RefundAmount.String()
	}
	return json.Marshal(w)
}

// ParsePaymentPayload checks the envelope's scheme and parses its payload.
func ParsePaymentPayload(pp *x402.PaymentPayload) (*Payload, error) {
	if pp.Accepted.Scheme != Scheme {
		return nil, x402.Failf(x402.ReasonBatchScheme, "scheme %q is not %q", pp.Accepted.Scheme, Scheme)
	}
	return ParsePayload(pp.Payload)
}
