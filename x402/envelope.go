package x402

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The PAYMENT-SIGNATURE envelope is decoded member by member from the strict scanner's split
// instead of through encoding/json's reflection: the header arrives on every paid request, and
// the split already walks every byte once. Keys match exactly (encoding/json would also take
// "X402Version"); unknown members are ignored and null leaves a field at its zero value, as
// encoding/json does.

// decodePaymentPayloadJSON checks raw with the strict rules and decodes it into a PaymentPayload.
func decodePaymentPayloadJSON(raw []byte) (PaymentPayload, error) {
	var p PaymentPayload
	if isNull(raw) {
		return p, nil
	}
	members, err := ObjectMembers(raw)
	if err != nil {
		return p, err
	}
	for _, m := range members {
		switch m.Key {
		case "x402Version":
			err = decodeInt(m.Value, &p.X402Version)
		case "resource":
			if !isNull(m.Value) {
				p.Resource = new(ResourceInfo)
				err = decodeResource(m.Value, p.Resource)
			}
		case "accepted":
			err = decodeRequirements(m.Value, &p.Accepted)
		case "payload":
			p.Payload = json.RawMessage(m.Value)
		case "extensions":
			p.Extensions, err = decodeRawMap(m.Value)
		}
		if err != nil {
			return PaymentPayload{}, fieldFailure(m.Key, err)
		}
	}
	return p, nil
}

// FieldError is a member whose JSON is well formed but whose value is not what the protocol
// says: its message names the member by its path ("accepted.maxTimeoutSeconds must be an integer
// number"), in protocol words. It matches ErrBadJSON with errors.Is.
type FieldError struct {
	Path    string // dotted, from the document's root
	Problem string // what is wrong, e.g. "must be a string"
}

func (e *FieldError) Error() string { return e.Path + " " + e.Problem }

// Unwrap makes a FieldError an ErrBadJSON for errors.Is: the header cannot be decoded.
func (e *FieldError) Unwrap() error { return ErrBadJSON }

// fieldFailure puts key in front of the path of a nested failure, or makes err one.
func fieldFailure(key string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Path: key + "." + fe.Path, Problem: fe.Problem}
	}
	return &FieldError{Path: key, Problem: err.Error()}
}

func decodeResource(raw []byte, r *ResourceInfo) error {
	members, err := nestedObject(raw)
	if err != nil {
		return err
	}
	for _, m := range members {
		switch m.Key {
		case "url":
			err = decodeString(m.Value, &r.URL)
		case "description":
			err = decodeString(m.Value, &r.Description)
		case "mimeType":
			err = decodeString(m.Value, &r.MimeType)
		}
		if err != nil {
			return fieldFailure(m.Key, err)
		}
	}
	return nil
}

func decodeRequirements(raw []byte, r *PaymentRequirements) error {
	if isNull(raw) {
		return nil
	}
	members, err := nestedObject(raw)
	if err != nil {
		return err
	}
	for _, m := range members {
		switch m.Key {
		case "scheme":
			err = decodeString(m.Value, &r.Scheme)
		case "network":
			err = decodeString(m.Value, &r.Network)
		case "amount":
			err = decodeString(m.Value, &r.Amount)
		case "asset":
			err = decodeString(m.Value, &r.Asset)
		case "payTo":
			err = decodeString(m.Value, &r.PayTo)
		case "maxTimeoutSeconds":
			err = decodeInt(m.Value, &r.MaxTimeoutSeconds)
		case "extra":
			r.Extra, err = decodeAnyMap(m.Value)
		}
		if err != nil {
			return fieldFailure(m.Key, err)
		}
	}
	return nil
}

// nestedObject splits a member's value, which the envelope's check has covered.
func nestedObject(raw []byte) ([]Member, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("must be an object")
	}
	return CheckedObjectMembers(raw)
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeString reads a JSON string (or null, which leaves *dst alone).
func decodeString(raw []byte, dst *string) error {
	if isNull(raw) {
		return nil
	}
	v, err := CheckedString(raw)
	if err == nil {
		*dst = v
	}
	return err
}

// CheckedString decodes a JSON string value that lies inside a document the strict rules
// accepted (a Member's value): without escapes it is copied as it stands, since the check
// already found valid UTF-8 and no control characters. Anything but a string fails.
func CheckedString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("must be a string")
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("must be a string")
	}
	return s, nil
}

// decodeInt reads a JSON number that is an integer in range (or null, which leaves *dst alone).
func decodeInt[T int | int64](raw []byte, dst *T) error {
	if isNull(raw) {
		return nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || int64(T(n)) != n {
		return fmt.Errorf("must be an integer number")
	}
	*dst = T(n)
	return nil
}

func decodeRawMap(raw []byte) (map[string]json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	members, err := nestedObject(raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		out[m.Key] = json.RawMessage(m.Value)
	}
	return out, nil
}

// decodeAnyMap reads an object into plain JSON values, numbers as json.Number (the decoder's
// UseNumber). Strings, numbers and literals are read directly; nested containers go through
// encoding/json.
func decodeAnyMap(raw []byte) (map[string]any, error) {
	if isNull(raw) {
		return nil, nil
	}
	members, err := nestedObject(raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(members))
	for _, m := range members {
		v, err := decodeAny(m.Value)
		if err != nil {
			return nil, fieldFailure(m.Key, err)
		}
		out[m.Key] = v
	}
	return out, nil
}

func decodeAny(raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		err := decodeString(raw, &s)
		return s, err
	case c == 'n':
		return nil, nil
	case c == 't':
		return true, nil
	case c == 'f':
		return false, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(raw), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// Not reached on checked input; the decoder's own words stay out of the message.
		return nil, errors.New("is not a JSON value")
	}
	return v, nil
}
