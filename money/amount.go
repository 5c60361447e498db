package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxAtomicDigits is the number of decimal digits in 2^256-1, the longest
// wire amount ParseAtomic accepts.
const MaxAtomicDigits = 78

// maxAmountLen bounds the input ParseAmount reads, so a hostile string costs
// little: "$", 78 integer digits, ".", and up to 255 fractional digits.
const maxAmountLen = 1 + MaxAtomicDigits + 1 + 255

var (
	// ErrSyntax reports a string that is not an amount in an accepted form.
	ErrSyntax = errors.New("invalid amount")
	// ErrTooFine reports a dollar amount with more precision than the asset's
	// smallest unit can hold.
	ErrTooFine = errors.New("finer than the asset's smallest unit")
	// ErrOutOfRange reports an amount above 2^256-1.
	ErrOutOfRange = errors.New("amount exceeds 2^256-1")
)

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// MaxUint256 returns a new copy of 2^256-1, the largest amount the package accepts.
func MaxUint256() *big.Int {
	return new(big.Int).Set(maxUint256)
}

// InRange reports whether amount is non-nil and within [0, 2^256-1].
func InRange(amount *big.Int) bool {
	return amount != nil && amount.Sign() >= 0 && amount.Cmp(maxUint256) <= 0
}

// ParseAtomic parses an amount in atomic units: a decimal integer in canonical
// form, ASCII digits only (no sign, spaces, exponent or fraction), no leading
// zero except in "0" itself, at most MaxAtomicDigits digits, and at most
// 2^256-1. It is the same rule as x402.ParseAmount, which reads amounts off
// the wire (money may not import x402, so a differential test keeps the two
// equal): every amount has one spelling, in the configuration and on the wire.
func ParseAtomic(s string) (*big.Int, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrSyntax)
	}
	if !allDigits(s) {
		return nil, fmt.Errorf("%w: %s is not a decimal integer of atomic units", ErrSyntax, quote(s))
	}
	if len(s) > MaxAtomicDigits {
		return nil, fmt.Errorf("%w: %s has more than %d digits", ErrOutOfRange, quote(s), MaxAtomicDigits)
	}
	if s[0] == '0' && len(s) > 1 {
		return nil, fmt.Errorf("%w: %s has a leading zero; write %s", ErrSyntax, quote(s), quote(strings.TrimLeft(s, "0")+zeroIfEmpty(s)))
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, quote(s))
	}
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrOutOfRange, quote(s))
	}
	return v, nil
}

// zeroIfEmpty returns "0" when s is all zeros, so the suggested spelling of
// "000" is "0".
func zeroIfEmpty(s string) string {
	if strings.TrimLeft(s, "0") == "" {
		return "0"
	}
	return ""
}

// ParseAmount parses a price written by a person, for an asset with the given
// number of decimals, and returns it in atomic units.
//
// "$1.25" is a dollar amount and needs digits on both sides of an optional
// dot; trailing fractional zeros are fine, but digits finer than the asset's
// smallest unit are an error wrapping ErrTooFine. "1250000" (digits only) is an
// amount already in atomic units, as for ParseAtomic. Anything else (a bare
// "0.5", signs, exponents, spaces, separators) is an error wrapping ErrSyntax.
// Zero is returned like any other amount; callers decide what it means.
func ParseAmount(s string, decimals uint8) (*big.Int, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrSyntax)
	}
	if len(s) > maxAmountLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrSyntax, maxAmountLen)
	}
	dollars, isDollar := strings.CutPrefix(s, "$")
	if !isDollar {
		if allDigits(s) {
			return ParseAtomic(s)
		}
		return nil, describeBadAtomic(s)
	}
	whole, frac, hasDot := strings.Cut(dollars, ".")
	if whole == "" || !allDigits(whole) || (hasDot && (frac == "" || !allDigits(frac))) {
		return nil, describeBadDollars(s)
	}
	// Trailing zeros add no precision, so "$0.0010000" is fine with 6 decimals.
	frac = strings.TrimRight(frac, "0")
	if len(frac) > int(decimals) {
		return nil, fmt.Errorf("%s: %w (%d decimals)", quote(s), ErrTooFine, decimals)
	}
	digits := whole + frac + strings.Repeat("0", int(decimals)-len(frac))
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return new(big.Int), nil
	}
	if len(digits) > MaxAtomicDigits {
		return nil, fmt.Errorf("%w: %s", ErrOutOfRange, quote(s))
	}
	v, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrSyntax, quote(s))
	}
	if v.Cmp(maxUint256) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrOutOfRange, quote(s))
	}
	return v, nil
}

// FormatAtomic renders amount atomic units as a decimal number of whole
// tokens, exactly and without trailing zeros: 1000 with 6 decimals is
// "0.001", 2000000 is "2". A nil amount formats as "0"; a negative one gets a
// leading "-".
func FormatAtomic(amount *big.Int, decimals uint8) string {
	if amount == nil {
		return "0"
	}
	sign := ""
	if amount.Sign() < 0 {
		sign = "-"
	}
	digits := new(big.Int).Abs(amount).String()
	d := int(decimals)
	if d == 0 {
		return sign + digits
	}
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
	if frac == "" {
		return sign + whole
	}
	return sign + whole + "." + frac
}

// FormatDollars is FormatAtomic with a "$" prefix ("$0.001"), the form
// ParseAmount reads back. A negative amount formats as "-$0.001".
func FormatDollars(amount *big.Int, decimals uint8) string {
	s := FormatAtomic(amount, decimals)
	if rest, neg := strings.CutPrefix(s, "-"); neg {
		return "-$" + rest
	}
	return "$" + s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// describeBadAtomic explains why a string without "$" is not an amount,
// pointing at the most likely mistake.
func describeBadAtomic(s string) error {
	switch {
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("%w: %s is negative", ErrSyntax, quote(s))
	case s[0] >= '0' && s[0] <= '9' && strings.ContainsAny(s, "eE"):
		return fmt.Errorf("%w: %s: exponents are not accepted; write the number out", ErrSyntax, quote(s))
	case isPlainDecimal(s):
		return fmt.Errorf("%w: %s is ambiguous: write %s for dollars or an integer number of atomic units",
			ErrSyntax, quote(s), quote("$"+s))
	default:
		return fmt.Errorf("%w: %s: want a dollar amount like \"$0.001\" or an integer number of atomic units like \"1000\"",
			ErrSyntax, quote(s))
	}
}

func describeBadDollars(s string) error {
	if strings.HasPrefix(s, "$-") || strings.HasPrefix(s, "-") {
		return fmt.Errorf("%w: %s is negative", ErrSyntax, quote(s))
	}
	return fmt.Errorf("%w: %s: want a dollar amount like \"$0.001\" (digits, optionally one dot followed by digits)",
		ErrSyntax, quote(s))
}

func isPlainDecimal(s string) bool {
	whole, frac, ok := strings.Cut(s, ".")
	return ok && whole != "" && frac != "" && allDigits(whole) && allDigits(frac)
}

// quote renders untrusted input for an error message, shortened so a long
// hostile string cannot flood logs.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
