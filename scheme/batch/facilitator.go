package batch

import (
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// VoucherClaim is one row of claim/claimWithSignature: the payer-signed voucher and the
// cumulative total the receiver claims against it (TotalClaimed <= MaxClaimableAmount).
type VoucherClaim struct {
	Channel            ChannelConfig
	MaxClaimableAmount *big.Int
	Signature          []byte // the payer authorizer's voucher signature
	TotalClaimed       *big.Int
}

// Entry returns the row as the receiver authorizer signs it.
func (c VoucherClaim) Entry(settlementSeparator common.Hash) ClaimEntry {
	return ClaimEntry{ChannelID: c.Channel.ChannelID(settlementSeparator), MaxClaimableAmount: c.MaxClaimableAmount, TotalClaimed: c.TotalClaimed}
}

// ClaimBatchOf returns the ClaimBatch message covering claims, in order.
func ClaimBatchOf(settlementSeparator common.Hash, claims []VoucherClaim) ClaimBatch {
	b := make(ClaimBatch, len(claims))
	for i, c := range claims {
		b[i] = c.Entry(settlementSeparator)
	}
	return b
}

// ClaimPayload asks a facilitator to submit claimWithSignature. AuthorizerSignature (the
// receiver authorizer's ClaimBatch signature) is nil when the facilitator holds that key.
type ClaimPayload struct {
	Claims              []VoucherClaim
	AuthorizerSignature []byte
}

// SettlePayload asks a facilitator to submit settle(receiver, token).
type SettlePayload struct {
	Receiver common.Address
	Token    common.Address
}

// RefundSettlePayload is a client refund completed by the server for the facilitator: the
// amount resolved, the current refund nonce, the claim of the outstanding voucher and,
// when the server holds the receiver-authorizer key, both signatures.
type RefundSettlePayload struct {
	Refund                    Payload // Type TypeRefund; RefundAmount is always set
	RefundNonce               *big.Int
	Claims                    []VoucherClaim
	RefundAuthorizerSignature []byte
	ClaimAuthorizerSignature  []byte
}

type (
	wireClaimVoucher struct {
		Channel            wireConfig `json:"channel"`
		MaxClaimableAmount string     `json:"maxClaimableAmount"`
	}
	wireVoucherClaim struct {
		Voucher      wireClaimVoucher `json:"voucher"`
		Signature    string           `json:"signature"`
		TotalClaimed string           `json:"totalClaimed"`
	}
	wireClaimPayload struct {
		Type                     PayloadType        `json:"type"`
		Claims                   []wireVoucherClaim `json:"claims"`
		ClaimAuthorizerSignature string             `json:"claimAuthorizerSignature,omitempty"`
	}
	wireSettlePayload struct {
		Type     PayloadType `json:"type"`
		Receiver string      `json:"receiver"`
		Token    string      `json:"token"`
	}
	wireRefundSettle struct {
		Type                      PayloadType        `json:"type"`
		ChannelConfig             wireConfig         `json:"channelConfig"`
		Voucher                   wireVoucher        `json:"voucher"`
		Amount                    string             `json:"amount"`
		RefundNonce               string             `json:"refundNonce"`
		Claims                    []wireVoucherClaim `json:"claims"`
		RefundAuthorizerSignature string             `json:"refundAuthorizerSignature,omitempty"`
		ClaimAuthorizerSignature  string             `json:"claimAuthorizerSignature,omitempty"`
	}
)

func wireClaims(claims []VoucherClaim) []wireVoucherClaim {
	out := make([]wireVoucherClaim, len(claims))
	for i, c := range claims {
		out[i] = wireVoucherClaim{
			Voucher:      wireClaimVoucher{Channel: c.Channel.wire(), MaxClaimableAmount: orZero(c.MaxClaimableAmount).String()},
			Signature:    hexBytes(c.Signature),
			TotalClaimed: orZero(c.TotalClaimed).String(),
		}
	}
	return out
}

func optionalHex(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hexBytes(b)
}

// MarshalJSON writes {"type":"claim","claims":[…],"claimAuthorizerSignature":…}.
func (p ClaimPayload) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireClaimPayload{Type: TypeClaim, Claims: wireClaims(p.Claims), ClaimAuthorizerSignature: optionalHex(p.AuthorizerSignature)})
}

// MarshalJSON writes {"type":"settle","receiver":…,"token":…}.
func (p SettlePayload) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireSettlePayload{Type: TypeSettle, Receiver: p.Receiver.Hex(), Token: p.Token.Hex()})
}

// MarshalJSON writes the completed refund in the reference server's shape.
func (p RefundSettlePayload) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireRefundSettle{
		Type: TypeRefund, ChannelConfig: p.Refund.ChannelConfig.wire(), Voucher: p.Refund.Voucher.wire(),
		Amount: orZero(p.Refund.RefundAmount).String(), RefundNonce: orZero(p.RefundNonce).String(),
		Claims:                    wireClaims(p.Claims),
		RefundAuthorizerSignature: optionalHex(p.RefundAuthorizerSignature),
		ClaimAuthorizerSignature:  optionalHex(p.ClaimAuthorizerSignature),
	})
}

// ParseClaimPayload parses a "claim" settle payload; failures carry
// invalid_batch_settlement_evm_claim_payload.
func ParseClaimPayload(raw json.RawMessage) (*ClaimPayload, error) {
	f := readObject(raw, "", true, "type", "claims", "claimAuthorizerSignature")
	expectType(f, TypeClaim)
	p := &ClaimPayload{Claims: parseClaims(f)}
	if f.has("claimAuthorizerSignature") {
		p.AuthorizerSignature = f.signature("claimAuthorizerSignature")
	}
	if err := f.failure(x402.ReasonBatchClaimPayload); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseSettlePayload parses a "settle" settle payload; failures carry
// invalid_batch_settlement_evm_settle_payload.
func ParseSettlePayload(raw json.RawMessage) (*SettlePayload, error) {
	f := readObject(raw, "", true, "type", "receiver", "token")
	expectType(f, TypeSettle)
	p := &SettlePayload{Receiver: f.address("receiver"), Token: f.address("token")}
	if err := f.failure(x402.ReasonBatchSettlePayload); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseRefundSettlePayload parses a completed refund; failures carry
// invalid_batch_settlement_evm_refund_payload.
func ParseRefundSettlePayload(raw json.RawMessage) (*RefundSettlePayload, error) {
	f := readObject(raw, "", true, "type", "channelConfig", "voucher", "amount", "refundNonce", "claims",
		"refundAuthorizerSignature", "claimAuthorizerSignature")
	expectType(f, TypeRefund)
	p := &RefundSettlePayload{Refund: Payload{Type: TypeRefund}}
	p.Refund.ChannelConfig = parseConfig(f, "channelConfig")
	p.Refund.Voucher = parseVoucher(f)
	p.Refund.RefundAmount = f.amount("amount", bits128)
	p.RefundNonce = f.amount("refundNonce", bits256)
	p.Claims = parseClaimList(f, true)
	if f.has("refundAuthorizerSignature") {
		p.RefundAuthorizerSignature = f.signature("refundAuthorizerSignature")
	}
	if f.has("claimAuthorizerSignature") {
		p.ClaimAuthorizerSignature = f.signature("claimAuthorizerSignature")
	}
	if err := f.failure(x402.ReasonBatchRefundPayload); err != nil {
		return nil, err
	}
	return p, nil
}

func expectType(f *fields, want PayloadType) {
	if got := PayloadType(f.str("type")); f.err == nil && got != want {
		f.fail(x402.ReasonBatchPayloadType, "type", "is %q, want %q", got, want)
	}
}

// parseClaims reads a non-empty claims list: the contract reverts on an empty batch.
func parseClaims(f *fields) []VoucherClaim { return parseClaimList(f, false) }

func parseClaimList(f *fields, allowEmpty bool) []VoucherClaim {
	v := f.raw("claims")
	if f.err != nil {
		return nil
	}
	var rows []json.RawMessage
	if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &rows) != nil {
		f.fail("", "claims", "must be an array")
		return nil
	}
	if len(rows) == 0 && !allowEmpty {
		f.fail("", "claims", "must not be empty")
		return nil
	}
	claims := make([]VoucherClaim, 0, len(rows))
	for _, row := range rows {
		r := readObject(row, "claims[]", true, "voucher", "signature", "totalClaimed")
		vo := r.object("voucher", true, "channel", "maxClaimableAmount")
		c := VoucherClaim{Channel: parseConfig(vo, "channel"), MaxClaimableAmount: vo.amount("maxClaimableAmount", bits128)}
		r.adopt(vo)
		c.Signature = r.signature("signature")
		c.TotalClaimed = r.amount("totalClaimed", bits128)
		if r.err == nil && c.TotalClaimed.Cmp(c.MaxClaimableAmount) > 0 {
			r.fail("", "totalClaimed", "exceeds the voucher's maxClaimableAmount")
		}
		f.adopt(r)
		if f.err != nil {
			return nil
		}
		claims = append(claims, c)
	}
	return claims
}
