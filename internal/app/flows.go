package app

import (
	"fmt"

	"github.com/payper/payper/config"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/pricing"
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
