package exact

import (
	"encoding/hex"
	"encoding/json"
	"errors"
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

// ParsePayload parses the scheme-specific payload of an x402 PaymentPayload with the envelope's
// strict rules (x402.ObjectMembers): valid JSON, no key repeated in any letter case, keys
// matched exactly ("VALUE" is not "value"), every field a JSON string. Members the scheme does
// not define are skipped, as the envelope and the reference do. Amounts and times are canonical
// decimal strings (x402.ParseAmount); the reference reads them with BigInt, which would also take
// a JSON number, a leading zero, "0x…" or surrounding spaces: stock clients write none of those,
// and refusing them is deliberately stricter. Every failure is an *x402.Error with reason
// invalid_exact_evm_payload (or …_missing_signature) whose message names the field by its
// protocol path (payload.authorization.value) and never shows Go's wording.
func ParsePayload(raw json.RawMessage) (*Payload, error) {
	top, err := x402.ObjectMembers(raw)
	if err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload %s", jsonProblem(err))
	}
	var p Payload
	sig, err := stringMember(top, "payload", "signature")
	switch {
	case err == errMissing || (err == nil && sig == ""):
		return nil, x402.Failf(x402.ReasonExactMissingSignature, "payload.signature is missing%s", caseHint(top, "signature"))
	case err != nil:
		return nil, err
	}
	if p.Signature, err = parseHex(sig, -1); err != nil || len(p.Signature) == 0 {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload.signature must be 0x-prefixed hex")
	}
	authRaw, ok := member(top, "authorization")
	if !ok {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload.authorization is missing%s", caseHint(top, "authorization"))
	}
	if len(authRaw) == 0 || authRaw[0] != '{' {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload.authorization must be a JSON object")
	}
	auth, err := x402.CheckedObjectMembers(authRaw) // checked with the payload above
	if err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "payload.authorization must be a JSON object")
	}
	const at = "payload.authorization"
	a := &p.Authorization
	for _, f := range []struct {
		name string
		out  **big.Int
	}{{"value", &a.Value}, {"validAfter", &a.ValidAfter}, {"validBefore", &a.ValidBefore}} {
		s, err := requiredString(auth, at, f.name)
		if err != nil {
			return nil, err
		}
		v, ok := x402.ParseAmount(s)
		if !ok {
			return nil, x402.Failf(x402.ReasonExactPayload, "%s.%s must be a decimal integer string without sign or leading zeros, at most 2^256-1", at, f.name)
		}
		*f.out = v
	}
	for _, f := range []struct {
		name string
		out  *common.Address
	}{{"from", &a.From}, {"to", &a.To}} {
		s, err := requiredString(auth, at, f.name)
		if err != nil {
			return nil, err
		}
		if *f.out, err = parseAddress(s); err != nil {
			return nil, x402.Failf(x402.ReasonExactPayload, "%s.%s %v", at, f.name, err)
		}
	}
	nonce, err := requiredString(auth, at, "nonce")
	if err != nil {
		return nil, err
	}
	b, err := parseHex(nonce, 32)
	if err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "%s.nonce must be 32 bytes of 0x-prefixed hex", at)
	}
	a.Nonce = common.BytesToHash(b)
	return &p, nil
}

// errMissing reports a member that is not there.
var errMissing = errors.New("missing")

func member(ms []x402.Member, key string) (json.RawMessage, bool) {
	for _, m := range ms {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// stringMember returns the JSON string at key, errMissing when there is none, or an *x402.Error
// naming parent.key when the value is not a string.
func stringMember(ms []x402.Member, parent, key string) (string, error) {
	v, ok := member(ms, key)
	if !ok {
		return "", errMissing
	}
	s, err := x402.CheckedString(v)
	if err != nil {
		return "", x402.Failf(x402.ReasonExactPayload, "%s.%s must be a JSON string", parent, key)
	}
	return s, nil
}

// requiredString is stringMember with a missing member reported too.
func requiredString(ms []x402.Member, parent, key string) (string, error) {
	s, err := stringMember(ms, parent, key)
	if err == errMissing {
		return "", x402.Failf(x402.ReasonExactPayload, "%s.%s is missing%s", parent, key, caseHint(ms, key))
	}
	return s, err
}

// caseHint points at a member spelled like key in another letter case, the likely mistake.
func caseHint(ms []x402.Member, key string) string {
	for _, m := range ms {
		if strings.EqualFold(m.Key, key) {
			return fmt.Sprintf(" (keys are case-sensitive: %q is not %q)", m.Key, key)
		}
	}
	return ""
}

// jsonProblem words a strict-JSON failure for the payload: the rule broken and where, without
// the header-level prefix.
func jsonProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), x402.ErrBadJSON.Error()+": ")
	if strings.HasPrefix(msg, "must be") {
		return msg
	}
	return "is not valid JSON: " + msg
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
