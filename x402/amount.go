package x402

import "math/big"

// MaxAmountDigits is the number of decimal digits of 2^256-1, the largest amount.
const MaxAmountDigits = 78

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseAmount decides what an amount string is, wherever one arrives: a wire amount (a price in
// requirements, an authorization's value, a voucher's cumulative amount, a settled amount) and,
// through money.ParseAtomic, which applies the same rule, an amount in atomic units written in
// the configuration. It is the canonical decimal form and nothing else: ASCII digits only (no
// sign, space, exponent, fraction or hex), no leading zero except in "0" itself, at most
// 2^256-1. It reports false for anything else.
//
// Leading zeros are refused on purpose. The reference implementation reads amounts with
// JavaScript's BigInt, which takes "01000" as 1000, but no stock client writes one (they format
// amounts with BigInt's toString), and every amount having a single spelling means two parties
// can never disagree on which string names which amount. This is stricter than the reference.
func ParseAmount(s string) (*big.Int, bool) {
	if s == "" || len(s) > MaxAmountDigits || (s[0] == '0' && len(s) > 1) {
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
