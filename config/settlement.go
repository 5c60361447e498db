package config

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Settlement defaults and bounds.
const (
	DefaultReplaceAfter = 20 * time.Second
	DefaultMaxFeePerGas = "100 gwei"
	MinReplaceAfter     = time.Second
	MaxReplaceAfter     = time.Hour
	DefaultBatchMax     = 100
	MaxBatchMax         = 500
	MaxBatchWindow      = time.Second
	DefaultBatchWindow  = 20 * time.Millisecond
)

// Settlement tunes how settlement transactions are sent and watched.
type Settlement struct {
	// InclusionMargin is how long an authorization must still be valid when its transaction is
	// sent, so that it can be mined in time; a payment closer to expiry is not sent.
	InclusionMargin time.Duration `yaml:"inclusionMargin"`
	// BatchMax caps how many exact payments completing together share one settlement
	// transaction (a Multicall3 batch, each payment allowed to fail on its own); 1 sends each
	// alone (default 100, 1..500).
	BatchMax int `yaml:"batchMax"`
	// BatchWindow is how long the first payment of a batch waits for others to join, while
	// other verified payments are on their way (default 20ms, against the second or more a
	// transaction waits for its block; 0: a batch is what arrived while the previous one was
	// being sent; at most 1s).
	BatchWindow time.Duration `yaml:"batchWindow"`
	// ReplaceAfter is how long a settler transaction may stay unmined before it is replaced by one
	// with the same nonce and fees raised by an eighth (default 20s, 1s..1h).
	ReplaceAfter time.Duration `yaml:"replaceAfter"`
	// MaxFeePerGas caps what any settler transaction, replacements included, may pay per gas:
	// "100 gwei", "0.0000002 eth" or a number of wei (default 100 gwei). A transaction that would
	// need more waits, and is reported; it is never sent at any price.
	MaxFeePerGas string `yaml:"maxFeePerGas"`
	// MinGasBalance is the settler's ETH balance below which a warning is logged, in the same
	// units. Empty: enough for about 100 settlements at the fees of the moment.
	MinGasBalance string `yaml:"minGasBalance"`
	// Flow is when exact payments settle on routes that do not say (flows.go; default auto).
	Flow string `yaml:"flow"`
	// Async bounds the async flow (flows.go).
	Async AsyncSettlement `yaml:"async"`
}

// RPCEndpoints is every RPC URL of the chain: rpcURL first (when set), then rpcURLs, without
// repeats.
func (c *Config) RPCEndpoints() []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range append([]string{c.RPCURL}, c.RPCURLs...) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// SettlementLimits returns settlement.maxFeePerGas and settlement.minGasBalance in wei (nil when
// not set).
func (c *Config) SettlementLimits() (maxFeePerGas, minGasBalance *big.Int, err error) {
	var errs []error
	if c.Settlement.MaxFeePerGas != "" {
		if maxFeePerGas, err = ParseWei(c.Settlement.MaxFeePerGas); err == nil && maxFeePerGas.Sign() == 0 {
			err = errors.New("must be more than 0")
		}
		if err != nil {
			errs = append(errs, &FieldError{Field: "settlement.maxFeePerGas", Err: err})
		}
	}
	if c.Settlement.MinGasBalance != "" {
		if minGasBalance, err = ParseWei(c.Settlement.MinGasBalance); err != nil {
			errs = append(errs, &FieldError{Field: "settlement.minGasBalance", Err: err})
		}
	}
	return maxFeePerGas, minGasBalance, errors.Join(errs...)
}

func (c *Config) validateChainAccess(v *validator) {
	if len(c.RPCEndpoints()) == 0 {
		v.fail("rpcURL", errRequired)
	}
	if c.RPCURL != "" {
		if err := checkRPCURL(c.RPCURL); err != nil {
			v.fail("rpcURL", err)
		}
	}
	for i, u := range c.RPCURLs {
		if err := checkRPCURL(u); err != nil {
			v.fail(fmt.Sprintf("rpcURLs[%d]", i), err)
		}
	}
	if r := c.Settlement.ReplaceAfter; r < MinReplaceAfter || r > MaxReplaceAfter {
		v.failf("settlement.replaceAfter", "%s is outside %s..%s", r, MinReplaceAfter, MaxReplaceAfter)
	}
	if m := c.Settlement.BatchMax; m < 1 || m > MaxBatchMax {
		v.failf("settlement.batchMax", "%d is outside 1..%d", m, MaxBatchMax)
	}
	if w := c.Settlement.BatchWindow; w < 0 || w > MaxBatchWindow {
		v.failf("settlement.batchWindow", "%s is outside 0s..%s", w, MaxBatchWindow)
	}
	if _, _, err := c.SettlementLimits(); err != nil {
		v.errs = append(v.errs, unwrapJoined(err)...)
	}
}

// etherUnits are the units ParseWei reads, as powers of ten of a wei.
var etherUnits = map[string]int{"wei": 0, "gwei": 9, "eth": 18, "ether": 18}

// ParseWei reads an amount of ETH: a decimal number followed by a unit (wei, gwei, eth or ether,
// any case, a space between optional), or a bare whole number of wei. The amount must be a
// whole number of wei.
func ParseWei(s string) (*big.Int, error) {
	trimmed := strings.TrimSpace(s)
	num := strings.TrimRightFunc(trimmed, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
	unit := strings.ToLower(trimmed[len(num):])
	num = strings.TrimSpace(num)
	exp, ok := etherUnits[unit]
	if unit == "" {
		exp, ok = 0, true
	}
	if !ok {
		return nil, fmt.Errorf("%q: unknown unit %q (want wei, gwei or eth)", s, unit)
	}
	whole, frac, dotted := strings.Cut(num, ".")
	if whole == "" || !allDigits(whole) || (dotted && (frac == "" || !allDigits(frac))) {
		return nil, fmt.Errorf("%q is not an amount such as \"100 gwei\", \"0.05 eth\" or a number of wei", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > exp {
		return nil, fmt.Errorf("%q is not a whole number of wei", s)
	}
	if len(whole)+exp > 60 {
		return nil, fmt.Errorf("%q is too large", s)
	}
	v, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", exp-len(frac)), 10)
	return v, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
