package app

import (
	"fmt"

	"github.com/payper/payper/config"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/pricing"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/store"
)

// settlementFlows returns the paywall's default flow and each route's own, matched by the rule
// that prices the request.
func settlementFlows(cfg *config.Config) (paywall.Flow, func(pricing.Rule) paywall.Flow, error) {
	def, err := paywall.ParseFlow(cfg.Settlement.Flow)
	if err != nil {
		return "", nil, fmt.Errorf("settlement.flow: %w", err)
	}
	perRoute := map[string]paywall.Flow{}
	for i, r := range cfg.Routes {
		if r.Settle == "" {
			continue
		}
		f, err := paywall.ParseFlow(r.Settle)
		if err != nil {
			return "", nil, fmt.Errorf("routes[%d].settle: %w", i, err)
		}
		perRoute[routeKey(r.Method, r.Path)] = f
	}
	return def, func(rule pricing.Rule) paywall.Flow { return perRoute[routeKey(rule.Method, rule.Path)] }, nil
}

// asyncSettlement builds the queue that settles async payments and, when a route uses the
// async flow, lets the exact method defer payments into it.
func (g *Gateway) asyncSettlement(method *exactmethod.Method) error {
	cfg := g.cfg
	g.queue = &settle.Queue{
		Ledger: g.store, Settler: method, Leases: g.store, Workers: cfg.Settlement.Async.Workers,
		// A worker's payments are settled together, so with batching they share a transaction.
		BatchSize:     max(1, cfg.Settlement.BatchMax),
		SettleTimeout: cfg.SettlementTimeout, Logger: g.log.With("component", "queue"),
	}
	if !cfg.UsesAsync() {
		return nil
	}
	perPayer, total, err := cfg.AsyncLimits()
	if err != nil {
		return err
	}
	method.Async = &exactmethod.Async{
		Ledger: g.store, Limits: store.AsyncLimits{PerPayer: perPayer, Total: total, BlockFor: cfg.Settlement.Async.BlockFor},
		Queued: g.queue.Notify,
	}
	return nil
}
