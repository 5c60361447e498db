package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// throughputTarget is the target: channel-mode throughput at least this share of the
// bare proxy's.
const throughputTarget = 0.7

// report is everything a run measured.
type report struct {
	GOMAXPROCS    int     `json:"gomaxprocs"`
	NumCPU        int     `json:"numCPU"`
	GoVersion     string  `json:"goVersion"`
	Workers       int     `json:"workers"`
	Channels      int     `json:"channels"`
	WarmupSeconds float64 `json:"warmupSeconds"`
	PhaseSeconds  float64 `json:"phaseSeconds"`
	DataDir       string  `json:"dataDir"`
	Network       string  `json:"network"`
	Price         string  `json:"priceAtomic"`
	UpstreamDelay float64 `json:"upstreamDelayMicros"`

	Verify    verifyResult `json:"voucherVerification"`
	Presign   presignStats `json:"presign"`
	Bare      phaseResult  `json:"bare"`
	Floor     *phaseResult `json:"signatureFloor,omitempty"`
	Gateway   phaseResult  `json:"gateway"`
	BareAgain *phaseResult `json:"bareAgain,omitempty"`

	ThroughputRatio    float64 `json:"throughputRatio"`               // gateway / bare (phase A)
	FloorRatio         float64 `json:"signatureFloorRatio,omitempty"` // phase F / phase A
	AddedP50Micros     float64 `json:"addedP50Micros"`
	AddedP99Micros     float64 `json:"addedP99Micros"`
	BareDrift          float64 `json:"bareDrift,omitempty"` // phase C / phase A − 1
	ThroughputTarget   float64 `json:"throughputTarget"`
	ThroughputMet      bool    `json:"throughputTargetMet"`
	VerifyTargetMicros float64 `json:"verifyTargetMicros"`
	VerifyMet          bool    `json:"verifyTargetMet"`
	CPUProfile         string  `json:"cpuProfile,omitempty"`
}

// compare derives the ratios and verdicts. The gateway is compared with phase A, the bare run
// right before it; phase C only shows how much the bare proxy drifted over the run.
func (r *report) compare() {
	if r.Bare.RPS > 0 {
		r.ThroughputRatio = r.Gateway.RPS / r.Bare.RPS
		if r.Floor != nil {
			r.FloorRatio = r.Floor.RPS / r.Bare.RPS
		}
		if r.BareAgain != nil {
			r.BareDrift = r.BareAgain.RPS/r.Bare.RPS - 1
		}
	}
	r.AddedP50Micros = r.Gateway.Latency.P50 - r.Bare.Latency.P50
	r.AddedP99Micros = r.Gateway.Latency.P99 - r.Bare.Latency.P99
	r.ThroughputMet = r.ThroughputRatio >= r.ThroughputTarget
	r.VerifyMet = r.Verify.VerifyMicros > 0 && r.Verify.VerifyMicros < r.VerifyTargetMicros
}

func (r *report) failures() int {
	n := 0
	for _, p := range r.phases() {
		n += p.Failures
	}
	return n
}

// noisyOtherPercent is how much CPU other processes may take during a phase before the report
// warns that the comparison is unreliable.
const noisyOtherPercent = 25

func (r *report) busiestOther() float64 {
	busiest := 0.0
	for _, p := range r.phases() {
		busiest = max(busiest, p.OtherCPUPercent)
	}
	return busiest
}

func (r *report) phases() []phaseResult {
	out := []phaseResult{r.Bare}
	if r.Floor != nil {
		out = append(out, *r.Floor)
	}
	out = append(out, r.Gateway)
	if r.BareAgain != nil {
		out = append(out, *r.BareAgain)
	}
	return out
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Payper gateway (channel mode) vs bare reverse proxy: same upstream, same load generator, same run\n")
	fmt.Fprintf(&b, "machine: %d CPUs, GOMAXPROCS=%d, %s; one process holds the load generator, gateway, bare proxy,\n", r.NumCPU, r.GOMAXPROCS, r.GoVersion)
	fmt.Fprintf(&b, "  upstream and dev chain, so they all share those cores\n")
	fmt.Fprintf(&b, "load: %d workers, closed loop, one keep-alive HTTP/1.1 connection each; %.0fs warm-up + %.0fs measured per phase\n",
		r.Workers, r.WarmupSeconds, r.PhaseSeconds)
	if r.UpstreamDelay > 0 {
		fmt.Fprintf(&b, "upstream: answers after waiting %.0f µs (-upstream-delay: a real API's I/O, no CPU spent)\n", r.UpstreamDelay)
	} else {
		fmt.Fprintf(&b, "upstream: answers at once (-upstream-delay 0), so the ratio shows the gateway's whole CPU overhead\n")
	}
	fmt.Fprintf(&b, "gateway: GET /v1/quote at %s atomic units per request on %s, paid by cumulative vouchers over %d channels;\n", r.Price, r.Network, r.Channels)
	fmt.Fprintf(&b, "  %d vouchers signed ahead (%.0f MB, %.1fs) after an unmeasured calibration pass at %.0f req/s; SQLite store in %s\n\n",
		r.Presign.Vouchers, float64(r.Presign.Bytes)/1e6, r.Presign.Seconds, r.Presign.CalibrationRPS, r.DataDir)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trequests\treq/s\tmean µs\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\tfailures\tCPU %\tCPU µs/req\tother CPU %\tsteal %\t")
	for _, p := range r.phases() {
		l := p.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t\n",
			p.Name, p.Requests, p.RPS, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max, p.Failures, p.CPUPercent, p.CPUPerRequestMicros, p.OtherCPUPercent, p.StealPercent)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nthroughput ratio gateway/bare (B/A): %.3f   target >= %.2f: %s\n", r.ThroughputRatio, r.ThroughputTarget, verdict(r.ThroughputMet))
	if r.Floor != nil {
		fmt.Fprintf(&b, "signature floor (F/A): %.3f   the most any gateway that recovers one secp256k1 signature per request\n", r.FloorRatio)
		fmt.Fprintf(&b, "  can reach here, before decoding, the charge's durable write or the receipt; gateway vs floor (B/F): %.3f\n", r.Gateway.RPS/r.Floor.RPS)
	}
	fmt.Fprintf(&b, "added latency (B - A): p50 %+.0f µs, p99 %+.0f µs\n", r.AddedP50Micros, r.AddedP99Micros)
	if r.Bare.CPUPerRequestMicros > 0 {
		fmt.Fprintf(&b, "CPU per request gateway/bare (B/A): %.2fx (%+.0f µs; less sensitive than req/s to other load on the machine)\n",
			r.Gateway.CPUPerRequestMicros/r.Bare.CPUPerRequestMicros, r.Gateway.CPUPerRequestMicros-r.Bare.CPUPerRequestMicros)
	}
	if r.BareAgain != nil {
		fmt.Fprintf(&b, "bare proxy drift (C vs A): %+.1f%% throughput\n", 100*r.BareDrift)
	}
	fmt.Fprintf(&b, "CPU %%: this whole process (generator, servers, upstream, chain); below %d%% it waited on something other than CPU.\n", 100*r.GOMAXPROCS)
	fmt.Fprintf(&b, "  other CPU %%: other processes on the machine meanwhile; steal %%: taken by the hypervisor. Both are noise.\n")
	if r.Verify.VerifyMicros > 0 {
		fmt.Fprintf(&b, "voucher verification, one core (GOMAXPROCS=1): %.1f µs/op, %d allocs/op   target < %.0f µs: %s\n",
			r.Verify.VerifyMicros, r.Verify.VerifyAllocs, r.VerifyTargetMicros, verdict(r.VerifyMet))
		fmt.Fprintf(&b, "  with the payload JSON parse: %.1f µs/op; from the PAYMENT-SIGNATURE header (base64, x402 envelope, parse, verify): %.1f µs/op\n",
			r.Verify.ParseVerifyMicros, r.Verify.HeaderToCheckMicros)
	}
	if busiest := r.busiestOther(); busiest > noisyOtherPercent {
		fmt.Fprintf(&b, "WARNING: other processes used up to %.0f%% CPU during a measured phase; these numbers are unreliable, rerun on a quiet machine\n", busiest)
	}
	if r.Gateway.SignedInline > 0 {
		fmt.Fprintf(&b, "note: %d vouchers were signed during phase B (the pre-signed supply ran out); that signing competed with the gateway for CPU\n", r.Gateway.SignedInline)
	}
	if r.CPUProfile != "" {
		fmt.Fprintf(&b, "CPU profile of the measured phase B (whole process): %s  (go tool pprof -top %s)\n", r.CPUProfile, r.CPUProfile)
	}
	for _, p := range r.phases() {
		for _, s := range p.FailureSamples {
			fmt.Fprintf(&b, "FAILURE in %s: %s\n", p.Name, s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}
