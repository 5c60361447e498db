package x402

import "math/big"

// maxAmountDigits bounds a wire amount: 2^256-1 has 78 decimal digits.
const maxAmountDigits = 78

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseAmount parses a wire amount: a decimal string of digits only (no sign, no exponent, no
// fraction; leading zeros allowed), at most 2^256-1. It reports false for anything else.
func ParseAmount(s string) (*big.Int, bool) {
	if s == "" || len(s) > maxAmountDigits+8 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(maxUint256) > 0 {
		return nil, false
	}
	return v, true
}
