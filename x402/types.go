package x402

import (
	"encoding/json"
	"strings"
)

// Version is the protocol version this package speaks on the wire.
const Version = 2

// Header names of the v2 HTTP transport. HTTP header lookup is case-insensitive, so these
// canonical spellings also match "payment-signature" and friends.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
	// Version 1 headers: the gateway strips them before the upstream, and the client never pays
	// a request that already carries one.
	HeaderPaymentV1         = "X-PAYMENT"
	HeaderPaymentResponseV1 = "X-PAYMENT-RESPONSE"
)

// ResourceInfo describes the resource a payment is for.
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// PaymentRequirements is one way the server accepts payment. Amount is a decimal string of
// atomic units; Extra carries scheme-specific data (for EVM exact: the EIP-712 name and version
// of the token).
type PaymentRequirements struct {
	Scheme            string         `json:"scheme"`
	Network           string         `json:"network"`
	Amount            string         `json:"amount"`
	Asset             string         `json:"asset"`
	PayTo             string         `json:"payTo"`
	MaxTimeoutSeconds int64          `json:"maxTimeoutSeconds"`
	Extra             map[string]any `json:"extra,omitempty"`
}

// PaymentRequired is the body of the PAYMENT-REQUIRED header (and of a Payper 402 body).
type PaymentRequired struct {
	X402Version int                        `json:"x402Version"`
	Error       string                     `json:"error,omitempty"`
	Resource    ResourceInfo               `json:"resource"`
	Accepts     []PaymentRequirements      `json:"accepts"`
	Extensions  map[string]json.RawMessage `json:"extensions,omitempty"`
}

// PaymentPayload is what a client sends in PAYMENT-SIGNATURE: the requirement it chose, copied
// verbatim, and the scheme-specific proof of payment.
type PaymentPayload struct {
	X402Version int                        `json:"x402Version"`
	Resource    *ResourceInfo              `json:"resource,omitempty"`
	Accepted    PaymentRequirements        `json:"accepted"`
	Payload     json.RawMessage            `json:"payload"`
	Extensions  map[string]json.RawMessage `json:"extensions,omitempty"`
}

// SettlementResponse is the body of the PAYMENT-RESPONSE header. Transaction is "" on failure.
type SettlementResponse struct {
	Success      bool   `json:"success"`
	ErrorReason  string `json:"errorReason,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	Payer        string `json:"payer,omitempty"`
	Transaction  string `json:"transaction"`
	Network      string `json:"network"`
	Amount       string `json:"amount,omitempty"`
	// Extra carries scheme-specific results, e.g. a batch-settlement channel's state.
	Extra      map[string]any             `json:"extra,omitempty"`
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// SameOffer reports whether two requirements name the same offer: the fields a client may not
// change (scheme, network, amount, asset, payTo). Addresses compare case-insensitively and
// amounts as canonical decimal strings (ParseAmount), so "010000" names no amount. The reference
// also compares the other members; a payment is verified against the server's own requirement,
// never the payer's copy, so they need not match (see interop's differential test).
func SameOffer(a, b PaymentRequirements) bool {
	return a.Scheme == b.Scheme && a.Network == b.Network && sameAmount(a.Amount, b.Amount) &&
		strings.EqualFold(a.Asset, b.Asset) && strings.EqualFold(a.PayTo, b.PayTo)
}

func sameAmount(a, b string) bool {
	x, okA := ParseAmount(a)
	y, okB := ParseAmount(b)
	return okA && okB && x.Cmp(y) == 0
}
