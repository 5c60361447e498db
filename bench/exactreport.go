package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// exactReport is everything an exact-mode run measured.
type exactReport struct {
	GOMAXPROCS        int            `json:"gomaxprocs"`
	NumCPU            int            `json:"numCPU"`
	GoVersion         string         `json:"goVersion"`
	NodeVersion       string         `json:"nodeVersion"`
	Connections       []int          `json:"connections"`
	WarmupSeconds     float64        `json:"warmupSeconds"`
	PhaseSeconds      float64        `json:"phaseSeconds"`
	Price             string         `json:"priceAtomic"`
	MaxTimeoutSeconds int            `json:"maxTimeoutSeconds"`
	DataDir           string         `json:"dataDir"`
	Chains            []*chainReport `json:"chains"`
	// Skipped are flows with targets that this run did not measure.
	Skipped []string `json:"flowsNotMeasured,omitempty"`
}

// chainReport is one chain's phases and what they compare to.
type chainReport struct {
	Name        string          `json:"name"`
	Detail      string          `json:"detail"`
	Network     string          `json:"network"`
	Token       string          `json:"token"`
	Phases      []exactPhase    `json:"phases"`
	Comparisons []comparison    `json:"comparisons"`
	Targets     []targetVerdict `json:"targets"`
	SSE         []sseResult     `json:"sse,omitempty"`
}

// exactPhase is one server at one connection count.
type exactPhase struct {
	Server      string `json:"server"`
	Flow        string `json:"flow,omitempty"` // "" for the official stack
	Connections int    `json:"connections"`
	// Presign describes the authorizations signed ahead (its "vouchers" count them) and the
	// calibration pass's rate that sized them.
	Presign presignStats `json:"presign"`
	Result  phaseResult  `json:"result"`
	// ChainClockLeadSeconds is how far the newest block's timestamp was ahead of the wall clock
	// right after the phase (negative: behind; whole seconds make it at most a second behind
	// while blocks come).
	ChainClockLeadSeconds float64 `json:"chainClockLeadSeconds"`
	// Blocks were mined while Payments were settled (calibration, warm-up and measured window):
	// how many settlements a block took on average.
	Blocks   uint64 `json:"blocks"`
	Payments int    `json:"payments"`
}

// comparison is a flow against the official stack at one connection count.
type comparison struct {
	Flow            string  `json:"flow"`
	Connections     int     `json:"connections"`
	ThroughputRatio float64 `json:"throughputRatio"` // flow req/s ÷ official req/s
	P50Ratio        float64 `json:"p50Ratio"`        // flow p50 ÷ official p50
	P99Ratio        float64 `json:"p99Ratio"`
}

// targetVerdict is one of the targets, measured or not.
type targetVerdict struct {
	Target   string  `json:"target"`
	Measured bool    `json:"measured"`
	Value    float64 `json:"value,omitempty"` // the ratio measured
	Met      bool    `json:"met"`
}

// compare derives the ratios and the targets' verdicts from the phases.
func (c *chainReport) compare() {
	official := map[int]phaseResult{}
	for _, p := range c.Phases {
		if p.Flow == "" && p.Result.Failures == 0 {
			official[p.Connections] = p.Result
		}
	}
	for _, p := range c.Phases {
		o, ok := official[p.Connections]
		if p.Flow == "" || !ok || p.Result.Failures > 0 || o.RPS == 0 {
			continue
		}
		c.Comparisons = append(c.Comparisons, comparison{
			Flow: p.Flow, Connections: p.Connections, ThroughputRatio: p.Result.RPS / o.RPS,
			P50Ratio: ratio(p.Result.Latency.P50, o.Latency.P50), P99Ratio: ratio(p.Result.Latency.P99, o.Latency.P99),
		})
	}
	for _, t := range exactTargets {
		v := targetVerdict{Target: t.String()}
		i := slices.IndexFunc(c.Comparisons, func(cmp comparison) bool { return cmp.Flow == t.Flow && cmp.Connections == t.Connections })
		if i >= 0 {
			v.Measured = true
			switch t.Kind {
			case throughputAtLeast:
				v.Value = c.Comparisons[i].ThroughputRatio
				v.Met = v.Value >= t.Ratio
			case p50AtMost:
				v.Value = c.Comparisons[i].P50Ratio
				v.Met = v.Value <= t.Ratio
			}
		}
		c.Targets = append(c.Targets, v)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// failures counts every failed request of the run.
func (r *exactReport) failures() int {
	n := 0
	for _, c := range r.Chains {
		for _, p := range c.Phases {
			n += p.Result.Failures
		}
		for _, s := range c.SSE {
			n += len(s.Failures)
		}
	}
	return n
}

func (r *exactReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *exactReport) writeTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Payper exact payments vs the official x402 TypeScript stack: same chain, same load generator, same run\n")
	fmt.Fprintf(&b, "machine: %d CPUs, GOMAXPROCS=%d, %s, node %s; the load generator and Payper's upstream run in this process,\n",
		r.NumCPU, r.GOMAXPROCS, r.GoVersion, r.NodeVersion)
	fmt.Fprintf(&b, "  each server under test (node; the payper binary) and anvil in processes of their own, all on these cores\n")
	fmt.Fprintf(&b, "load: closed loop, one keep-alive HTTP/1.1 connection per worker; every request pays GET %s (%s atomic units)\n", quotePath, r.Price)
	fmt.Fprintf(&b, "  with its own EIP-3009 authorization, signed ahead (maxTimeoutSeconds %d on both servers); per server and\n", r.MaxTimeoutSeconds)
	fmt.Fprintf(&b, "  connection count: an unmeasured calibration pass, then %.0fs warm-up + %.0fs measured\n", r.WarmupSeconds, r.PhaseSeconds)
	for _, c := range r.Chains {
		if err := c.writeTable(&b); err != nil {
			return err
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "\nflows with targets not measured in this run: %s\n", strings.Join(r.Skipped, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (c *chainReport) writeTable(b *strings.Builder) error {
	fmt.Fprintf(b, "\n== %s (%s, token %s)\n   %s\n\n", c.Name, c.Network, c.Token, c.Detail)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tconns\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tfailures\tsigned inline\tCPU % bench\tCPU % server\tCPU % chain\tother CPU %\tpaid/block\tclock lead s\t")
	for _, p := range c.Phases {
		r, l := p.Result, p.Result.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.0f\t%s\t%s\t%.0f\t%s\t%+.0f\t\n",
			p.Server, p.Connections, r.Requests, r.RPS, l.P50/1e3, l.P90/1e3, l.P99/1e3, l.Max/1e3, r.Failures, r.SignedInline,
			r.CPUPercent, childPercent(r, "server"), childPercent(r, "chain"), foreignCPU(r), perBlock(p), p.ChainClockLeadSeconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(c.Comparisons) > 0 {
		fmt.Fprintf(b, "\nPayper / official:\n")
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "flow\tconns\treq/s ratio\tp50 ratio\tp99 ratio\t")
		for _, cmp := range c.Comparisons {
			fmt.Fprintf(tw, "%s\t%d\t%.2fx\t%.2fx\t%.2fx\t\n", cmp.Flow, cmp.Connections, cmp.ThroughputRatio, cmp.P50Ratio, cmp.P99Ratio)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	inProcess := ""
	if c.Name == devChainName {
		inProcess = ", the embedded chain"
	}
	fmt.Fprintf(b, "CPU %%: bench = this process (load generator, Payper's upstream%s); server = the server under test's process;\n", inProcess)
	fmt.Fprintf(b, "  chain = anvil's process; other = everything else on the machine meanwhile (noise). 100 = one core.\n")
	fmt.Fprintf(b, "paid/block: payments settled per block mined over the phase, warm-up included; clock lead: the newest block's\n")
	fmt.Fprintf(b, "  timestamp minus the wall clock right after the phase, in seconds (block timestamps are whole seconds).\n")
	busiest := 0.0
	for _, p := range c.Phases {
		busiest = max(busiest, foreignCPU(p.Result))
	}
	if busiest > noisyOtherPercent {
		fmt.Fprintf(b, "WARNING: other processes used up to %.0f%% CPU during a measured phase; these numbers are unreliable, rerun on a quiet machine\n", busiest)
	}
	fmt.Fprintf(b, "\ntargets (printed, not enforced):\n")
	for _, t := range c.Targets {
		switch {
		case !t.Measured:
			fmt.Fprintf(b, "  %s: not measured\n", t.Target)
		default:
			fmt.Fprintf(b, "  %s: %.2fx, %s\n", t.Target, t.Value, verdict(t.Met))
		}
	}
	for _, s := range c.SSE {
		fmt.Fprintf(b, "  %s paid SSE route's time to first event within %.0f µs of the same route unpriced: paid p50 %.1f ms, unpriced p50 %.1f ms (upstream holds the second event %s), %s\n",
			s.Flow, s.TargetMicros, s.PaidP50Micros/1e3, s.UnpricedP50Micros/1e3, sseHold, verdict(s.Met))
	}
	for _, p := range c.Phases {
		for _, s := range p.Result.FailureSamples {
			fmt.Fprintf(b, "FAILURE in %s: %s\n", p.Result.Name, s)
		}
	}
	for _, s := range c.SSE {
		for _, f := range s.Failures[:min(len(s.Failures), 3)] {
			fmt.Fprintf(b, "FAILURE in %s SSE: %s\n", s.Flow, f)
		}
	}
	return nil
}

// foreignCPU is what processes other than this one and the target's children used.
func foreignCPU(r phaseResult) float64 {
	v := r.OtherCPUPercent
	for _, c := range r.ChildCPUPercent {
		v -= c
	}
	return max(0, v)
}

func perBlock(p exactPhase) string {
	if p.Blocks == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(p.Payments)/float64(p.Blocks))
}

func childPercent(r phaseResult, role string) string {
	v, ok := r.ChildCPUPercent[role]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}
