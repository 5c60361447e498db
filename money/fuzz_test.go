package money

import (
	"math/big"
	"strings"
	"testing"

	"github.com/payper/payper/x402"
)

func FuzzParseAmount(f *testing.F) {
	for _, seed := range []string{
		"$0.001", "$1", "$0.0000001", "1000", "010000", "0.5", "-1", "$-1", "1e6", "$ 1", "+1",
		"", "$", "$.5", "$5.", "$0.0010000", maxUintDecimal, "$" + maxUintDecimal, "$1.2.3",
	} {
		f.Add(seed, uint8(6))
	}
	f.Add("$1", uint8(0))
	f.Add("$1.000000000000000001", uint8(18))
	f.Add("$0."+strings.Repeat("0", 254)+"1", uint8(255))

	f.Fuzz(func(t *testing.T, s string, decimals uint8) {
		v, err := ParseAmount(s, decimals)
		if err != nil {
			if v != nil {
				t.Fatalf("ParseAmount(%q) returned a value with an error", s)
			}
			return
		}
		if !InRange(v) {
			t.Fatalf("ParseAmount(%q, %d) = %s, outside [0, 2^256-1]", s, decimals, v)
		}
		if !strings.HasPrefix(s, "$") {
			// Without "$" the string is atomic units, so ParseAtomic agrees.
			w, err := ParseAtomic(s)
			if err != nil || w.Cmp(v) != 0 {
				t.Fatalf("ParseAmount(%q) = %s but ParseAtomic = %v, %v", s, v, w, err)
			}
			return
		}
		// A dollar amount formats back to an equal, canonical dollar amount.
		formatted := FormatDollars(v, decimals)
		back, err := ParseAmount(formatted, decimals)
		if err != nil || back.Cmp(v) != 0 {
			t.Fatalf("ParseAmount(%q) = %s, formats as %q, which parses to %v, %v", s, v, formatted, back, err)
		}
		if canon := canonicalDecimal(s[1:]); "$"+canon != formatted {
			t.Fatalf("ParseAmount(%q) formats as %q, want $%s", s, formatted, canon)
		}
	})
}

// canonicalDecimal strips redundant zeros from a well-formed decimal string.
func canonicalDecimal(s string) string {
	whole, frac, _ := strings.Cut(s, ".")
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

func FuzzParseAtomic(f *testing.F) {
	for _, seed := range []string{
		"0", "1", "010000", "0000", maxUintDecimal, maxUintDecimal + "0", strings.Repeat("0", 79),
		"-1", "+1", "1.5", "1e3", " 1", "", "0x10", "115792089237316195423570985008687907853269984665640564039457584007913129639936",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAtomic(s)
		// One rule for every amount string: the wire's (x402.ParseAmount) and the
		// configuration's agree on what is an amount and on its value.
		w, ok := x402.ParseAmount(s)
		if (err == nil) != ok || (ok && v.Cmp(w) != 0) {
			t.Fatalf("ParseAtomic(%q) = %v, %v but x402.ParseAmount = %v, %v", s, v, err, w, ok)
		}
		if err != nil {
			return
		}
		if !InRange(v) || v.String() != s {
			t.Fatalf("ParseAtomic(%q) = %s: not the canonical spelling of an amount in range", s, v)
		}
	})
}

// FuzzFormatAtomic checks that every in-range amount formats to a string
// that parses back to itself, both as dollars and via FormatAtomic's digits.
func FuzzFormatAtomic(f *testing.F) {
	f.Add([]byte{0x03, 0xe8}, uint8(6))
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(255))
	f.Fuzz(func(t *testing.T, raw []byte, decimals uint8) {
		if len(raw) > 32 {
			raw = raw[:32]
		}
		v := new(big.Int).SetBytes(raw)
		got := FormatAtomic(v, decimals)
		back, err := ParseAmount("$"+got, decimals)
		if err != nil || back.Cmp(v) != 0 {
			t.Fatalf("FormatAtomic(%s, %d) = %q, parses back to %v, %v", v, decimals, got, back, err)
		}
		if strings.HasSuffix(got, ".") || (strings.Contains(got, ".") && strings.HasSuffix(got, "0")) {
			t.Fatalf("FormatAtomic(%s, %d) = %q is not trimmed", v, decimals, got)
		}
	})
}
