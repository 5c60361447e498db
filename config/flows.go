package config

import (
	"fmt"
	"math/big"
	"time"

	"github.com/payper/payper/money"
)

// Settlement flows: when an exact payment settles relative to the upstream's answer. Channel
// vouchers are made final at the upstream's headers whatever the flow.
const (
	FlowAuto         = "auto"          // after-body, but streams and large bodies settle as soon as that is known
	FlowBefore       = "before"        // settle, then call the upstream (x402 "upfront"); not refunded
	FlowAfterHeaders = "after-headers" // settle at the upstream's headers, then stream
	FlowAfterBody    = "after-body"    // buffer, settle, release (the x402 reference)
	FlowAsync        = "async"         // serve at once, settle from a durable queue
)

// flowNames lists every flow, for validation and messages.
var flowNames = []string{FlowAuto, FlowBefore, FlowAfterHeaders, FlowAfterBody, FlowAsync}

// Defaults of the async flow's bounds.
const (
	DefaultFlow              = FlowAuto
	DefaultAsyncMaxPerPayer  = "$0.10"
	DefaultAsyncMaxUnsettled = "$10"
	DefaultAsyncBlockFor     = 24 * time.Hour
	MinAsyncBlockFor         = time.Minute
	MaxAsyncBlockFor         = 8760 * time.Hour
	DefaultAsyncWorkers      = 16
	MaxAsyncWorkers          = 1024
)

// AsyncSettlement bounds the value served before it is paid in the async flow. A payment that
// would take its payer or the gateway past a bound, or whose payer is blocked, is settled
// synchronously instead (as in auto): the bounds never refuse a good payment, they only stop
// extending credit.
type AsyncSettlement struct {
	// MaxUnsettledPerPayer is the most one payer may have served and not yet settled ("$0.10"
	// or atomic units; default $0.10).
	MaxUnsettledPerPayer string `yaml:"maxUnsettledPerPayer"`
	// MaxUnsettled is the most all payers together may have served and not yet settled
	// (default $10).
	MaxUnsettled string `yaml:"maxUnsettled"`
	// BlockFor is how long a payer whose async settlement failed settles synchronously
	// (1m..8760h, default 24h).
	BlockFor time.Duration `yaml:"blockFor"`
	// Workers is how many queued settlements are sent at once (1..1024, default 16).
	Workers int `yaml:"workers"`
}

func defaultAsyncSettlement() AsyncSettlement {
	return AsyncSettlement{MaxUnsettledPerPayer: DefaultAsyncMaxPerPayer, MaxUnsettled: DefaultAsyncMaxUnsettled,
		BlockFor: DefaultAsyncBlockFor, Workers: DefaultAsyncWorkers}
}

// RouteFlow is the flow of route i: its own settle, or settlement.flow.
func (c *Config) RouteFlow(i int) string {
	if c.Routes[i].Settle != "" {
		return c.Routes[i].Settle
	}
	return c.Settlement.Flow
}

// UsesAsync reports whether any route settles in the async flow.
func (c *Config) UsesAsync() bool {
	for i := range c.Routes {
		if c.RouteFlow(i) == FlowAsync {
			return true
		}
	}
	return c.Settlement.Flow == FlowAsync
}

// AsyncLimits returns the async bounds in atomic units.
func (c *Config) AsyncLimits() (perPayer, total *big.Int, err error) {
	if perPayer, err = money.ParseAmount(c.Settlement.Async.MaxUnsettledPerPayer, c.Asset.Decimals); err != nil {
		return nil, nil, &FieldError{Field: "settlement.async.maxUnsettledPerPayer", Err: err}
	}
	if total, err = money.ParseAmount(c.Settlement.Async.MaxUnsettled, c.Asset.Decimals); err != nil {
		return nil, nil, &FieldError{Field: "settlement.async.maxUnsettled", Err: err}
	}
	return perPayer, total, nil
}

func validFlow(s string) bool {
	for _, f := range flowNames {
		if s == f {
			return true
		}
	}
	return false
}

func (c *Config) validateFlows(v *validator) {
	if !validFlow(c.Settlement.Flow) {
		v.failf("settlement.flow", "%q is not %s", c.Settlement.Flow, orList(flowNames))
	}
	for i, r := range c.Routes {
		if r.Settle != "" && !validFlow(r.Settle) {
			v.failf(fmt.Sprintf("routes[%d].settle", i), "%q is not %s", r.Settle, orList(flowNames))
		}
	}
	a := c.Settlement.Async
	if a.BlockFor < MinAsyncBlockFor || a.BlockFor > MaxAsyncBlockFor {
		v.failf("settlement.async.blockFor", "%s is outside %s..%s", a.BlockFor, MinAsyncBlockFor, MaxAsyncBlockFor)
	}
	v.between("settlement.async.workers", a.Workers, 1, MaxAsyncWorkers)
	perPayer, total, err := c.AsyncLimits()
	if err != nil {
		v.errs = append(v.errs, err)
		return
	}
	if perPayer.Sign() == 0 || total.Sign() == 0 {
		v.failf("settlement.async", "maxUnsettledPerPayer and maxUnsettled must be more than 0")
	}
	if perPayer.Cmp(total) > 0 {
		v.failf("settlement.async.maxUnsettledPerPayer", "%s is more than maxUnsettled %s", a.MaxUnsettledPerPayer, a.MaxUnsettled)
	}
	// A price above the per-payer bound could never be deferred: every payment would settle
	// synchronously, which is async in name only.
	for i, r := range c.Routes {
		price, err := money.ParseAmount(r.Price, c.Asset.Decimals)
		if err != nil || c.RouteFlow(i) != FlowAsync || price.Cmp(perPayer) <= 0 {
			continue
		}
		v.failf(fmt.Sprintf("routes[%d].settle", i), "async: the price %s is more than settlement.async.maxUnsettledPerPayer %s",
			r.Price, a.MaxUnsettledPerPayer)
	}
}
