package x402

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// The payment-identifier extension (x402 specs/extensions/payment_identifier.md): the server
// declares it in a 402's extensions; the client echoes the declaration in its PaymentPayload and
// adds info.id, an idempotency key it reuses when it retries the same payment.
const (
	ExtensionPaymentIdentifier = "payment-identifier"
	MinPaymentIDLength         = 16
	MaxPaymentIDLength         = 128
)

// ErrBadPaymentID means a payload carries a payment identifier that is not 16–128 characters
// of [A-Za-z0-9_-].
var ErrBadPaymentID = errors.New("invalid payment identifier")

// PaymentIdentifierDeclaration is the extension as a server declares it in a 402, byte for byte
// what the reference's declarePaymentIdentifierExtension produces: info.required and the JSON
// schema of info.
func PaymentIdentifierDeclaration(required bool) json.RawMessage {
	return json.RawMessage(`{"info":{"required":` + fmt.Sprint(required) + `},"schema":{` +
		`"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{` +
		`"required":{"type":"boolean"},` +
		`"id":{"type":"string","minLength":16,"maxLength":128,"pattern":"^[a-zA-Z0-9_-]+$"}},` +
		`"required":["required"]}}`)
}

// ValidPaymentID reports whether id is 16–128 characters of [A-Za-z0-9_-].
func ValidPaymentID(id string) bool {
	if len(id) < MinPaymentIDLength || len(id) > MaxPaymentIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewPaymentID returns "pay_" and 32 random hex digits, the shape the reference client uses.
func NewPaymentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "pay_" + hex.EncodeToString(b[:])
}

// PaymentIdentifier returns the info.id a payload's extensions carry, or "" when there is none:
// no payment-identifier extension, or one without an info object or without an id (a client
// that echoed the declaration and added nothing). An id that is present but not a valid one, a
// string of 16–128 characters of [A-Za-z0-9_-], fails with ErrBadPaymentID.
//
// Like the reference, info.required and the schema the client echoed are not checked.
func PaymentIdentifier(extensions map[string]json.RawMessage) (string, error) {
	raw, ok := extensions[ExtensionPaymentIdentifier]
	if !ok {
		return "", nil
	}
	info, ok := objectMember(raw, "info")
	if !ok {
		return "", nil
	}
	rawID, ok := objectMember(info, "id")
	if !ok || isNull(rawID) {
		return "", nil
	}
	id, err := CheckedString(rawID)
	if err != nil {
		return "", fmt.Errorf("%w: info.id must be a string", ErrBadPaymentID)
	}
	if !ValidPaymentID(id) {
		return "", fmt.Errorf("%w: %d characters; want %d–%d of A–Z, a–z, 0–9, '_' and '-'", ErrBadPaymentID,
			len(id), MinPaymentIDLength, MaxPaymentIDLength)
	}
	return id, nil
}

// objectMember returns the value of key in raw when raw is a strict JSON object holding it.
func objectMember(raw []byte, key string) (json.RawMessage, bool) {
	members, err := ObjectMembers(raw)
	if err != nil {
		return nil, false
	}
	for _, m := range members {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// WithPaymentIdentifier returns a copy of the extensions a server declared with id set as the
// payment-identifier's info.id, every other member kept. Like the reference client, it changes
// nothing (and reports false) unless the server declared the extension with a boolean
// info.required.
func WithPaymentIdentifier(declared map[string]json.RawMessage, id string) (map[string]json.RawMessage, bool, error) {
	if !ValidPaymentID(id) {
		return declared, false, fmt.Errorf("%w: %q", ErrBadPaymentID, id)
	}
	raw, ok := declared[ExtensionPaymentIdentifier]
	if !ok {
		return declared, false, nil
	}
	var ext map[string]json.RawMessage
	var info map[string]json.RawMessage
	if json.Unmarshal(raw, &ext) != nil || json.Unmarshal(ext["info"], &info) != nil {
		return declared, false, nil
	}
	if r := bytes.TrimSpace(info["required"]); !bytes.Equal(r, []byte("true")) && !bytes.Equal(r, []byte("false")) {
		return declared, false, nil
	}
	info["id"], _ = json.Marshal(id)
	ext["info"], _ = json.Marshal(info)
	out := make(map[string]json.RawMessage, len(declared))
	for k, v := range declared {
		out[k] = v
	}
	out[ExtensionPaymentIdentifier], _ = json.Marshal(ext)
	return out, true, nil
}

// PaymentDigest is the SHA-256 of a PAYMENT-SIGNATURE header's JSON in canonical form, so that
// two headers carrying the same payment compare equal however each was encoded (base64 padding,
// whitespace, member order).
//
// The canonical form: the decoded JSON, which must pass the strict rules, written again with
// every object's members sorted by key (byte order), no insignificant whitespace, strings
// re-escaped by encoding/json and numbers exactly as written.
func PaymentDigest(header string, maxBytes int) ([32]byte, error) {
	raw, err := decodeHeaderBytes(header, maxBytes)
	if err != nil {
		return [32]byte{}, err
	}
	canon, err := CanonicalJSON(raw)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(canon), nil
}

// CanonicalJSON writes raw, which must pass the strict rules, in the canonical form PaymentDigest
// describes.
func CanonicalJSON(raw []byte) ([]byte, error) {
	if err := CheckStrictJSON(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	// encoding/json writes map keys sorted and json.Number as written.
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	return out, nil
}
