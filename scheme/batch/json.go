package batch

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// Bit widths of the on-chain integer types the wire carries as decimal strings.
const (
	bits128 = 128
	bits256 = 256
	// maxUint40 bounds ChannelConfig.withdrawDelay.
	maxUint40 = 1<<40 - 1
	// maxSignatureBytes bounds a signature (EIP-1271 and ERC-6492 ones can be long); the whole
	// header is capped earlier anyway.
	maxSignatureBytes = 4 << 10
)

// fields reads the members of one JSON object, field by field, keeping the first failure.
// Keys match exactly (encoding/json would match "Type" to "type"); duplicate keys are refused
// so that a signature check and the settlement can never see different values.
type fields struct {
	m      []x402.Member
	path   string
	err    error
	reason x402.Reason // set when a failure has its own wire reason
}

// readObject reads raw as a JSON object. With strict set, keys outside known are refused.
func readObject(raw []byte, path string, strict bool, known ...string) *fields {
	return newFields(x402.ObjectMembers, raw, path, strict, known)
}

// readNested reads a member's value: the strict rules were checked over the whole document
// already, so the object is only split.
func readNested(raw []byte, path string, strict bool, known ...string) *fields {
	return newFields(x402.CheckedObjectMembers, raw, path, strict, known)
}

func newFields(split func([]byte) ([]x402.Member, error), raw []byte, path string, strict bool, known []string) *fields {
	f := &fields{path: path}
	members, err := split(raw)
	switch {
	case err != nil:
		// The x402 error names the rule broken; drop its sentinel prefix, the reason says it.
		err = errors.New(strings.TrimPrefix(err.Error(), x402.ErrBadJSON.Error()+": "))
	case strict:
		for _, m := range members {
			if !contains(known, m.Key) {
				err = fmt.Errorf("unknown key %q", m.Key)
				break
			}
		}
	}
	if err != nil {
		f.err = fmt.Errorf("%s: %w", pathOr(path), err)
		return f
	}
	f.m = members
	return f
}

func pathOr(p string) string {
	if p == "" {
		return "payload"
	}
	return p
}

// member returns the value of key, which must match exactly.
func (f *fields) member(key string) (json.RawMessage, bool) {
	for _, m := range f.m {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// only refuses keys outside the list.
func (f *fields) only(keys ...string) {
	if f.err != nil {
		return
	}
	for _, m := range f.m {
		if !contains(keys, m.Key) {
			f.fail("", m.Key, "is not a known key")
			return
		}
	}
}

func (f *fields) fail(reason x402.Reason, key, format string, args ...any) {
	if f.err != nil {
		return
	}
	name := key
	if f.path != "" {
		name = f.path + "." + key
	}
	f.err = fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...))
	f.reason = reason
}

func (f *fields) has(key string) bool {
	if f.err != nil {
		return false
	}
	_, ok := f.member(key)
	return ok
}

// raw returns a member that must be present.
func (f *fields) raw(key string) json.RawMessage {
	if f.err != nil {
		return nil
	}
	v, ok := f.member(key)
	if !ok {
		f.fail("", key, "is missing")
		return nil
	}
	return v
}

// str returns a member that must be a JSON string.
func (f *fields) str(key string) string {
	v := f.raw(key)
	if f.err != nil {
		return ""
	}
	s, err := x402.CheckedString(v)
	if err != nil {
		f.fail("", key, "must be a string")
	}
	return s
}

func (f *fields) address(key string) common.Address {
	s := f.str(key)
	if f.err != nil {
		return common.Address{}
	}
	a, err := parseAddress(s)
	if err != nil {
		f.fail("", key, "%v", err)
	}
	return a
}

func (f *fields) hash(key string) common.Hash {
	s := f.str(key)
	if f.err != nil {
		return common.Hash{}
	}
	b, err := parseHex(s, 32)
	if err != nil {
		f.fail("", key, "must be 32 bytes of 0x-hex")
	}
	return common.BytesToHash(b)
}

// channelID is a hash whose malformation has its own wire reason.
func (f *fields) channelID(key string) common.Hash {
	s := f.str(key)
	if f.err != nil {
		return common.Hash{}
	}
	b, err := parseHex(s, 32)
	if err != nil {
		f.fail(x402.ReasonBatchChannelIDInvalid, key, "must be 0x followed by 64 hex digits")
	}
	return common.BytesToHash(b)
}

func (f *fields) signature(key string) []byte {
	s := f.str(key)
	if f.err != nil {
		return nil
	}
	b, err := parseHex(s, -1)
	if err != nil || len(b) == 0 || len(b) > maxSignatureBytes {
		f.fail("", key, "must be a non-empty 0x-hex signature of at most %d bytes", maxSignatureBytes)
	}
	return b
}

// amount returns a decimal-string integer below 2^bits.
func (f *fields) amount(key string, bits int) *big.Int {
	s := f.str(key)
	if f.err != nil {
		return nil
	}
	v, err := parseUint(s, bits)
	if err != nil {
		f.fail("", key, "%v", err)
	}
	return v
}

// number returns a member that must be a JSON number holding an integer in [0, max].
func (f *fields) number(key string, max uint64) uint64 {
	v := f.raw(key)
	if f.err != nil {
		return 0
	}
	n, err := parseJSONUint(v, max)
	if err != nil {
		f.fail("", key, "%v", err)
	}
	return n
}

// object returns a nested object member.
func (f *fields) object(key string, strict bool, known ...string) *fields {
	v := f.raw(key)
	path := key
	if f.path != "" {
		path = f.path + "." + key
	}
	if f.err != nil {
		return &fields{path: path, err: f.err, reason: f.reason}
	}
	return readNested(v, path, strict, known...)
}

// adopt takes over a nested reader's failure.
func (f *fields) adopt(g *fields) {
	if f.err == nil && g.err != nil {
		f.err, f.reason = g.err, g.reason
	}
}

// failure turns the first recorded problem into an *x402.Error with the given default reason.
func (f *fields) failure(def x402.Reason) error {
	if f.err == nil {
		return nil
	}
	r := def
	if f.reason != "" {
		r = f.reason
	}
	return x402.Fail(r, f.err.Error(), nil)
}

func parseAddress(s string) (common.Address, error) {
	b, err := parseHex(s, 20)
	if err != nil {
		return common.Address{}, errors.New("must be a 20-byte 0x-hex address")
	}
	return common.BytesToAddress(b), nil
}

// parseHex decodes "0x"-prefixed hex of any letter case; size < 0 accepts any length.
func parseHex(s string, size int) ([]byte, error) {
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' {
		return nil, errors.New("missing 0x prefix")
	}
	if size >= 0 && len(s) != 2+2*size {
		return nil, fmt.Errorf("want %d bytes", size)
	}
	return hex.DecodeString(s[2:])
}

// parseUint parses the wire form of an amount (x402.ParseAmount: canonical decimal digits, no
// leading zero) below 2^bits. The reference reads these with BigInt, which would also take a
// leading zero; refusing it is deliberately stricter, as for every amount.
func parseUint(s string, bits int) (*big.Int, error) {
	v, ok := x402.ParseAmount(s)
	if !ok || v.BitLen() > bits {
		return nil, fmt.Errorf("must be a decimal integer string without sign or leading zeros, below 2^%d", bits)
	}
	return v, nil
}

// parseJSONUint parses a JSON number token that is a plain non-negative integer (no sign,
// fraction or exponent) no larger than max.
func parseJSONUint(v json.RawMessage, max uint64) (uint64, error) {
	if len(v) == 0 || len(v) > 20 {
		return 0, errors.New("must be a non-negative integer number")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errors.New("must be a non-negative integer number")
		}
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("must be an integer number at most %d", max)
	}
	return n, nil
}

func hexBytes(b []byte) string { return "0x" + hex.EncodeToString(b) }

// orZero treats a nil amount as zero.
func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

func fitsUint128(v *big.Int) bool { return v != nil && v.Sign() >= 0 && v.BitLen() <= bits128 }
