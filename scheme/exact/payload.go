package exact

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// wirePayload is the JSON shape of an EIP-3009 exact payload. Numbers travel as decimal strings.
type wirePayload struct {
	Signature     string            `json:"signature"`
	Authorization wireAuthorization `json:"authorization"`
}

type wireAuthorization struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

// Payload is a parsed EIP-3009 exact payload.
type Payload struct {
	Signature     []byte
	Authorization Authorization
}

// MarshalJSON writes the wire form.
func (p Payload) MarshalJSON() ([]byte, error) {
	a := p.Authorization
	return json.Marshal(wirePayload{
		Signature: "0x" + hex.EncodeToString(p.Signature),
		Authorization: wireAuthorization{
			From:        a.From.Hex(),
			To:          a.To.Hex(),
			Value:       a.Value.String(),
			ValidAfter:  a.ValidAfter.String(),
			ValidBefore: a.ValidBefore.String(),
			Nonce:       a.Nonce.Hex(),
		},
	})
}

// ParsePayload parses the scheme-specific payload of an x402 PaymentPayload. Every failure is an
// *x402.Error with reason invalid_exact_evm_payload (or ..._missing_signature) and a message that
// names the field.
func ParsePayload(raw json.RawMessage) (*Payload, error) {
	var w wirePayload
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload is not an EIP-3009 authorization: %v", err)
	}
	if w.Signature == "" {
		return nil, x402.Failf(x402.ReasonExactMissingSignature, "payload.signature is missing")
	}
	sig, err := parseHex(w.Signature, -1)
	if err != nil || len(sig) == 0 {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload.signature is not 0x-hex")
	}
	a := w.Authorization
	var p Payload
	p.Signature = sig
	fields := []struct {
		name string
		in   string
		out  **big.Int
	}{
		{"value", a.Value, &p.Authorization.Value},
		{"validAfter", a.ValidAfter, &p.Authorization.ValidAfter},
		{"validBefore", a.ValidBefore, &p.Authorization.ValidBefore},
	}
	for _, f := range fields {
		v, ok := x402.ParseAmount(f.in)
		if !ok {
			return nil, x402.Failf(x402.ReasonExactPayload, "authorization.%s must be a decimal integer string", f.name)
		}
		*f.out = v
	}
	if p.Authorization.From, err = parseAddress(a.From); err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "authorization.from: %v", err)
	}
	if p.Authorization.To, err = parseAddress(a.To); err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "authorization.to: %v", err)
	}
	nonce, err := parseHex(a.Nonce, 32)
	if err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "authorization.nonce must be 32 bytes of 0x-hex")
	}
	p.Authorization.Nonce = common.BytesToHash(nonce)
	return &p, nil
}

func parseAddress(s string) (common.Address, error) {
	b, err := parseHex(s, 20)
	if err != nil {
		return common.Address{}, fmt.Errorf("must be a 20-byte 0x-hex address")
	}
	return common.BytesToAddress(b), nil
}

// parseHex decodes 0x-prefixed hex; size < 0 means any length.
func parseHex(s string, size int) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return nil, fmt.Errorf("missing 0x prefix")
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, err
	}
	if size >= 0 && len(b) != size {
		return nil, fmt.Errorf("want %d bytes, got %d", size, len(b))
	}
	return b, nil
}
