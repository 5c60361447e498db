package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxHeaderBytes caps an encoded payment header before anything is decoded. A valid
// exact payload is about 1.2 KB; 8 KiB leaves room for extensions without inviting abuse.
const DefaultMaxHeaderBytes = 8 << 10

// maxJSONDepth bounds nesting in decoded headers; real payloads nest four levels deep.
const maxJSONDepth = 32

// Decoding failures. Every one of them means the input is malformed: answer 400, never 500.
var (
	ErrHeaderTooLarge = errors.New("payment header too large")
	ErrBadBase64      = errors.New("payment header is not valid base64")
	ErrBadJSON        = errors.New("payment header is not valid JSON")
	ErrBadVersion     = errors.New("unsupported x402Version")
	ErrMissingField   = errors.New("missing required field")
)

// EncodeHeader returns base64(JSON(v)) with the standard, padded alphabet.
func EncodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("x402: encode header: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeHeader decodes base64 JSON into v, strictly: at most maxBytes of encoded input (0 means
// DefaultMaxHeaderBytes), standard base64 (padding optional), a single JSON value, no duplicate
// or case-colliding object keys, bounded nesting.
func DecodeHeader(header string, maxBytes int, v any) error {
	raw, err := decodeHeaderBytes(header, maxBytes)
	if err != nil {
		return err
	}
	return decodeStrictJSON(raw, v)
}

// decodeHeaderBytes checks the encoded size and decodes the base64.
func decodeHeaderBytes(header string, maxBytes int) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxHeaderBytes
	}
	if len(header) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, len(header), maxBytes)
	}
	return decodeBase64(strings.TrimSpace(header))
}

func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadBase64)
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	raw, err := enc.Strict().DecodeString(s)
	if err != nil {
		// The decoder's own wording ("illegal base64 data …") is Go's, not the protocol's.
		var at base64.CorruptInputError
		if errors.As(err, &at) {
			return nil, fmt.Errorf("%w: unexpected character or padding at position %d", ErrBadBase64, int64(at))
		}
		return nil, fmt.Errorf("%w: malformed", ErrBadBase64)
	}
	return raw, nil
}

func decodeStrictJSON(raw []byte, v any) error {
	if err := CheckStrictJSON(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		// The check above leaves only type mismatches; say which member, in protocol words.
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return &FieldError{Path: te.Field, Problem: "must not be a JSON " + te.Value}
		case errors.As(err, &te):
			return fmt.Errorf("%w: must be a JSON object, not a JSON %s", ErrBadJSON, te.Value)
		}
		return fmt.Errorf("%w: a member has the wrong type", ErrBadJSON)
	}
	return nil
}

// DecodePaymentPayload decodes a v2 PAYMENT-SIGNATURE header and checks the fields every scheme
// needs. It returns ErrBadVersion for any x402Version other than 2.
func DecodePaymentPayload(header string, maxBytes int) (*PaymentPayload, error) {
	raw, err := decodeHeaderBytes(header, maxBytes)
	if err != nil {
		return nil, err
	}
	p, err := decodePaymentPayloadJSON(raw)
	if err != nil {
		return nil, err
	}
	if p.X402Version != Version {
		return nil, fmt.Errorf("%w: %d", ErrBadVersion, p.X402Version)
	}
	switch {
	case p.Accepted.Scheme == "":
		return nil, fmt.Errorf("%w: accepted.scheme", ErrMissingField)
	case p.Accepted.Network == "":
		return nil, fmt.Errorf("%w: accepted.network", ErrMissingField)
	case len(bytes.TrimSpace(p.Payload)) == 0 || bytes.Equal(bytes.TrimSpace(p.Payload), []byte("null")):
		return nil, fmt.Errorf("%w: payload", ErrMissingField)
	}
	return &p, nil
}

// DecodePaymentRequired decodes a PAYMENT-REQUIRED header.
func DecodePaymentRequired(header string, maxBytes int) (*PaymentRequired, error) {
	var p PaymentRequired
	if err := DecodeHeader(header, maxBytes, &p); err != nil {
		return nil, err
	}
	if p.X402Version != Version {
		return nil, fmt.Errorf("%w: %d", ErrBadVersion, p.X402Version)
	}
	return &p, nil
}

// DecodeSettlementResponse decodes a PAYMENT-RESPONSE header.
func DecodeSettlementResponse(header string, maxBytes int) (*SettlementResponse, error) {
	var s SettlementResponse
	if err := DecodeHeader(header, maxBytes, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// IsMalformed reports whether err means the header could not be decoded at all (a 400), as
// opposed to a decodable payment that fails verification (a 402).
func IsMalformed(err error) bool {
	return errors.Is(err, ErrHeaderTooLarge) || errors.Is(err, ErrBadBase64) ||
		errors.Is(err, ErrBadJSON) || errors.Is(err, ErrBadVersion) || errors.Is(err, ErrMissingField)
}
