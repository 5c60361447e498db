package batch

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// ResponseExtra is PAYMENT-RESPONSE extra for batch-settlement: what this request was charged
// and the channel snapshot including the new charged total.
type ResponseExtra struct {
	ChargedAmount *big.Int // omitted for refunds
	ChannelState  *ChannelState
	VoucherState  *VoucherState
}

type wireResponseExtra struct {
	ChannelState  *ChannelState `json:"channelState,omitempty"`
	ChargedAmount string        `json:"chargedAmount,omitempty"`
	VoucherState  *VoucherState `json:"voucherState,omitempty"`
}

// MarshalJSON writes {"channelState":…,"chargedAmount":…}.
func (e ResponseExtra) MarshalJSON() ([]byte, error) {
	w := wireResponseExtra{ChannelState: e.ChannelState, VoucherState: e.VoucherState}
	if e.ChargedAmount != nil {
		w.ChargedAmount = e.ChargedAmount.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON parses the extra of a server's PAYMENT-RESPONSE; unknown keys are ignored.
func (e *ResponseExtra) UnmarshalJSON(raw []byte) error {
	f := readObject(raw, "extra", false)
	var out ResponseExtra
	if f.has("chargedAmount") {
		out.ChargedAmount = f.amount("chargedAmount", bits128)
	}
	if f.has("channelState") {
		out.ChannelState = new(ChannelState)
		if err := out.ChannelState.UnmarshalJSON(f.raw("channelState")); err != nil {
			f.fail("", "channelState", "%v", err)
		}
	}
	if f.has("voucherState") {
		out.VoucherState = new(VoucherState)
		if err := out.VoucherState.UnmarshalJSON(f.raw("voucherState")); err != nil {
			f.fail("", "voucherState", "%v", err)
		}
	}
	if f.err != nil {
		return f.err
	}
	*e = out
	return nil
}

// SettlementResponse is a PAYMENT-RESPONSE body as the batch-settlement server writes it: the
// fields of x402.SettlementResponse plus extra, with amount always present ("" for a voucher,
// which moves no tokens).
type SettlementResponse struct {
	Success      bool                       `json:"success"`
	ErrorReason  string                     `json:"errorReason,omitempty"`
	ErrorMessage string                     `json:"errorMessage,omitempty"`
	Payer        string                     `json:"payer,omitempty"`
	Transaction  string                     `json:"transaction"`
	Network      string                     `json:"network"`
	Amount       string                     `json:"amount"`
	Extensions   map[string]json.RawMessage `json:"extensions,omitempty"`
	Extra        *ResponseExtra             `json:"extra,omitempty"`
}

// X402 returns the generic response; its extra holds values that marshal to the wire forms.
func (r SettlementResponse) X402() x402.SettlementResponse {
	out := x402.SettlementResponse{
		Success: r.Success, ErrorReason: r.ErrorReason, ErrorMessage: r.ErrorMessage, Payer: r.Payer,
		Transaction: r.Transaction, Network: r.Network, Amount: r.Amount, Extensions: r.Extensions,
	}
	if r.Extra != nil {
		out.Extra = r.Extra.members()
	}
	return out
}

// members is the extra as a JSON object's members; the values marshal to the wire forms, so
// the generic response is written without a round trip through JSON.
func (e ResponseExtra) members() map[string]any {
	m := make(map[string]any, 3)
	if e.ChargedAmount != nil {
		m["chargedAmount"] = e.ChargedAmount.String()
	}
	if e.ChannelState != nil {
		m["channelState"] = *e.ChannelState
	}
	if e.VoucherState != nil {
		m["voucherState"] = *e.VoucherState
	}
	return m
}

// VoucherResponse is the answer to a paid voucher: no transaction, amount "", the charge, and
// the snapshot with the new charged total. state.ChargedCumulativeAmount must be set. The payer
// is lower-case, as the reference server writes it.
func VoucherResponse(network string, payer common.Address, state ChannelState, charged *big.Int) SettlementResponse {
	return SettlementResponse{
		Success: true, Payer: strings.ToLower(payer.Hex()), Network: network,
		Extra: &ResponseExtra{ChargedAmount: charged, ChannelState: &state},
	}
}

// DepositResponse is the answer to a paid deposit: the deposit transaction and amount, the
// charge and the post-deposit snapshot with the new charged total.
func DepositResponse(network string, payer common.Address, tx common.Hash, deposited *big.Int, state ChannelState, charged *big.Int) SettlementResponse {
	return SettlementResponse{
		Success: true, Payer: payer.Hex(), Transaction: tx.Hex(), Network: network, Amount: deposited.String(),
		Extra: &ResponseExtra{ChargedAmount: charged, ChannelState: &state},
	}
}

// RefundResponse is the answer to a cooperative refund: the refund transaction, the refunded
// amount and the post-refund snapshot; no charge.
func RefundResponse(network string, payer common.Address, tx common.Hash, refunded *big.Int, state ChannelState) SettlementResponse {
	return SettlementResponse{
		Success: true, Payer: payer.Hex(), Transaction: tx.Hex(), Network: network, Amount: refunded.String(),
		Extra: &ResponseExtra{ChannelState: &state},
	}
}

// DecodeSettlementResponse decodes a PAYMENT-RESPONSE header (base64 JSON, strict as
// x402.DecodeHeader) including the batch-settlement extra.
func DecodeSettlementResponse(header string, maxBytes int) (*SettlementResponse, error) {
	var r SettlementResponse
	if err := x402.DecodeHeader(header, maxBytes, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
