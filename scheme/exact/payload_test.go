package exact

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/payper/payper/x402"
)

// goisms are fragments of Go's own error wording and type names that must never reach a payer:
// the payer speaks x402, not Go.
var goisms = []string{"Go struct", "Go value", "wirePayload", "wireAuthorization", "json:", "cannot unmarshal",
	"*big.Int", "big.Int", "exact.", "x402.", "encoding/", "invalid character", "unexpected end of JSON"}

func checkNoGoisms(t *testing.T, what, msg string) {
	t.Helper()
	for _, g := range goisms {
		if strings.Contains(msg, g) {
			t.Errorf("%s: message %q shows %q", what, msg, g)
		}
	}
}

// TestParsePayloadIsStrict: the exact payload is read with the envelope's strict rules. Keys
// match exactly ("VALUE" is not "value"), a key may not repeat in any spelling, every field has
// its JSON type, and amounts are canonical decimal strings ("01000" is refused). Failures name
// the field by its protocol path and never show Go's wording.
func TestParsePayloadIsStrict(t *testing.T) {
	req := testOffer().Requirements(big.NewInt(1000))
	good := string(signedPayload(t, mustKey(t, payerKeyHex), req).Payload)
	if _, err := ParsePayload([]byte(good)); err != nil {
		t.Fatalf("a valid payload: %v", err)
	}
	for name, tc := range map[string]struct {
		payload string
		field   string // the protocol path the message must name
	}{
		"upper-case key":       {strings.Replace(good, `"value"`, `"VALUE"`, 1), "payload.authorization.value"},
		"capitalised key":      {strings.Replace(good, `"authorization"`, `"Authorization"`, 1), "payload.authorization"},
		"signature key case":   {strings.Replace(good, `"signature"`, `"Signature"`, 1), "payload.signature"},
		"leading zero value":   {replaceField(t, good, "value", "01000"), "payload.authorization.value"},
		"leading zero before":  {replaceField(t, good, "validBefore", "0"+mustField(t, good, "validBefore")), "payload.authorization.validBefore"},
		"zero after, padded":   {replaceField(t, good, "validAfter", "00"), "payload.authorization.validAfter"},
		"plus sign":            {replaceField(t, good, "value", "+1000"), "payload.authorization.value"},
		"spaces":               {replaceField(t, good, "value", " 1000"), "payload.authorization.value"},
		"number for string":    {strings.Replace(good, `"value":"1000"`, `"value":1000`, 1), "payload.authorization.value"},
		"null value":           {strings.Replace(good, `"value":"1000"`, `"value":null`, 1), "payload.authorization.value"},
		"object for string":    {strings.Replace(good, `"value":"1000"`, `"value":{}`, 1), "payload.authorization.value"},
		"array authorization":  {strings.Replace(strings.Replace(good, `"authorization":{`, `"authorization":[{`, 1), `}}`, `}]}`, 1), "payload.authorization"},
		"number signature":     {strings.Replace(good, `"signature":"`, `"signature":1,"x":"`, 1), "payload.signature"},
		"duplicate key":        {strings.Replace(good, `"value":"1000"`, `"value":"1000","value":"1"`, 1), "value"},
		"case-duplicate key":   {strings.Replace(good, `"value":"1000"`, `"value":"1000","Value":"1"`, 1), "Value"},
		"trailing data":        {good + `{}`, "payload"},
		"not an object":        {`"hello"`, "payload"},
		"truncated":            {good[:len(good)-3], "payload"},
		"invalid UTF-8 in key": {strings.Replace(good, `"value"`, "\"val\xffue\"", 1), "payload"},
	} {
		_, err := ParsePayload([]byte(tc.payload))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, x402.ReasonExactPayload) && !errors.Is(err, x402.ReasonExactMissingSignature) {
			t.Errorf("%s: reason of %v", name, err)
		}
		msg := x402.MessageOf(err)
		if !strings.Contains(msg, tc.field) {
			t.Errorf("%s: message %q does not name %s", name, msg, tc.field)
		}
		checkNoGoisms(t, name, msg)
	}
}

// TestParsePayloadIgnoresUnknownKeys: like the envelope (and the reference, which reads the
// fields it knows), members the scheme does not define are skipped.
func TestParsePayloadIgnoresUnknownKeys(t *testing.T) {
	req := testOffer().Requirements(big.NewInt(1000))
	good := string(signedPayload(t, mustKey(t, payerKeyHex), req).Payload)
	extended := strings.Replace(good, `"value":"1000"`, `"value":"1000","memo":{"a":[1,2]}`, 1)
	extended = strings.Replace(extended, `{"signature"`, `{"note":"hi","signature"`, 1)
	p, err := ParsePayload([]byte(extended))
	if err != nil || p.Authorization.Value.Int64() != 1000 {
		t.Fatalf("%v %+v", err, p)
	}
}

func mustField(t *testing.T, payload, field string) string {
	t.Helper()
	i := strings.Index(payload, `"`+field+`":"`)
	if i < 0 {
		t.Fatalf("no %s in %s", field, payload)
	}
	rest := payload[i+len(field)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}
