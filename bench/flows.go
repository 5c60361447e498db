package main

import (
	"fmt"
	"slices"
	"strings"
)

// exactFlow is one way a Payper gateway settles an exact payment, and the configuration that
// selects it. Exact mode runs one gateway per flow asked for (-flows), side by side with the
// official stack, on the same chain and with the same load.
type exactFlow struct {
	Name string
	// Config is merged into the gateway's YAML configuration (maps merge key by key, anything
	// else replaces); nil keeps the defaults.
	Config map[string]any
}

// knownFlows are the flows the gateway has. To measure a new one, add it here with the
// configuration keys that select it; its targets go into exactTargets.
var knownFlows = []exactFlow{
	// Settle, then call the upstream (x402's upfront flow).
	{Name: "before", Config: flowConfig("before", nil)},
	// Call the upstream; settle when its status and headers arrive, then stream the body.
	{Name: "after-headers", Config: flowConfig("after-headers", nil)},
	// Buffer the upstream's answer, settle if it is below 400, then release it: the reference's
	// behaviour.
	{Name: "after-body", Config: flowConfig("after-body", nil)},
	// Reserve durably, serve at once, settle from the queue. The bounds on unsettled value are
	// raised far above what a phase spends, so that every payment is deferred: a payment over a
	// bound would settle synchronously and the phase would measure after-body instead.
	{Name: "async", Config: flowConfig("async", map[string]any{
		"async": map[string]any{"maxUnsettledPerPayer": "$100000", "maxUnsettled": "$1000000"},
	})},
}

// flowConfig is the configuration that selects flow for every route, with more settlement keys.
func flowConfig(flow string, settlement map[string]any) map[string]any {
	s := map[string]any{"flow": flow}
	mergeConfig(s, settlement)
	return map[string]any{"settlement": s}
}

// parseFlows turns -flows into the flows to run, in the order given.
func parseFlows(list string) ([]exactFlow, error) {
	var out []exactFlow
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(knownFlows, func(f exactFlow) bool { return f.Name == name })
		switch {
		case i >= 0 && !slices.ContainsFunc(out, func(f exactFlow) bool { return f.Name == name }):
			out = append(out, knownFlows[i])
		case i >= 0:
			return nil, fmt.Errorf("-flows names %q twice", name)
		default:
			return nil, fmt.Errorf("unknown flow %q (known: %s)", name, flowNames(knownFlows))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-flows names no flow (known: %s)", flowNames(knownFlows))
	}
	return out, nil
}

func flowNames(fs []exactFlow) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// mergeConfig merges over into base, recursively for maps.
func mergeConfig(base, over map[string]any) {
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				mergeConfig(bm, vm)
				continue
			}
		}
		base[k] = v
	}
}

// targetKind is what an exact-mode target compares.
type targetKind int

const (
	throughputAtLeast targetKind = iota // flow req/s ≥ Ratio × official req/s
	p50AtMost                           // flow p50 ≤ Ratio × official p50
)

// exactTarget is one of the targets for a flow against the official stack, at one
// connection count. Targets are printed, never failed.
type exactTarget struct {
	Flow        string
	Kind        targetKind
	Connections int
	Ratio       float64
}

var exactTargets = []exactTarget{
	{Flow: "after-body", Kind: throughputAtLeast, Connections: 32, Ratio: 5},
	{Flow: "after-body", Kind: p50AtMost, Connections: 1, Ratio: 1.0 / 3},
	{Flow: "async", Kind: throughputAtLeast, Connections: 32, Ratio: 20},
}

func (t exactTarget) String() string {
	if t.Kind == p50AtMost {
		return fmt.Sprintf("%s p50 at %d connection(s) <= 1/%.0f of the official stack's", t.Flow, t.Connections, 1/t.Ratio)
	}
	return fmt.Sprintf("%s paid req/s at %d connections >= %.0fx the official stack's", t.Flow, t.Connections, t.Ratio)
}
