// Command bench measures the Payper gateway. It has two modes.
//
// Channel mode (-mode channels, the default) measures the gateway in channel mode against a bare
// reverse proxy in one run: same upstream, same load generator with the same connection
// settings, same machine. It prints both targets' throughput and latency, the throughput ratio
// gateway/bare, the latency the gateway adds, and a voucher verification micro-benchmark, each
// against its target.
//
// Exact mode (-mode exact) measures exact payments (one EIP-3009 transfer per request) through
// Payper's gateway, one per settlement flow, side by side with the official x402 TypeScript
// stack (Express, @x402/express and an in-process facilitator, from interop/'s lock file), on
// the same chain: anvil from the @foundry-rs/anvil npm package, then the embedded dev chain.
// Same load generator, same pre-signed payments, at 1, 8 and 32 connections; it prints req/s,
// p50 and p99 for each, the ratios Payper/official and the targets (see exact.go).
//
// In channel mode everything runs in this process: the embedded dev chain, the gateway
// (app.StartDev with channels enabled), the bare proxy (package proxy alone), a tiny upstream
// and the load generator. Phases, in order:
//
//	A  bare proxy, no payment header
//	F  the bare proxy plus one secp256k1 signature recovery per request (-floor=false skips it):
//	   the ceiling for any gateway that checks a voucher signature per request
//	B  gateway, every request paid with a pre-signed cumulative voucher
//	C  bare proxy again, to show drift between the two bare runs (-drift=false skips it)
//
// Each phase has a warm-up whose requests are not measured. Vouchers are signed before phase B
// starts (exact mode signs its authorizations the same way), so the generator spends no CPU on
// signing while the gateway is measured; how many are signed follows an unmeasured calibration
// pass against the gateway (see presign.go). In both modes the process exits non-zero when a
// request fails (a transport error, a non-200 status, or a response without a successful
// PAYMENT-RESPONSE), never because a target was missed.
//
//	go run ./bench -duration 10s -concurrency 32 -channels 32 -cpuprofile gateway.pprof
//	go run ./bench -mode exact -connections 1,8,32 -chains anvil,dev -flows before,after-headers,after-body,async
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Modes and the chains exact mode runs on.
const (
	modeChannels = "channels"
	modeExact    = "exact"
	chainAnvil   = "anvil"
	chainDev     = "dev"
)

// options are the command's flags.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	channels    int
	drift       bool
	jsonOut     bool
	cpuProfile  string
	dataDir     string
	presignMax  int
	verbose     bool
	upDelay     time.Duration
	verify      bool
	floor       bool
	paymentIDs  bool

	mode string
	// Exact mode only.
	connections []int
	chains      []string
	flows       []exactFlow
	interopDir  string
	payperBin   string
	official    bool
	sseRequests int
}

func (o options) hasFlow(name string) bool {
	return slices.ContainsFunc(o.flows, func(f exactFlow) bool { return f.Name == name })
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per phase")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each phase")
	fs.IntVar(&o.concurrency, "concurrency", 32, "workers (closed loop, one keep-alive connection each)")
	fs.IntVar(&o.channels, "channels", 0, "escrow channels, at least -concurrency; a worker rotates through its share (default -concurrency)")
	fs.BoolVar(&o.drift, "drift", true, "run the bare proxy again after the gateway (phase C)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "channel mode: write a CPU profile of the measured gateway phase to this file; exact mode: each gateway writes a profile of its whole run to FILE-CHAIN-FLOW.pprof")
	fs.StringVar(&o.dataDir, "datadir", "", "directory for the chain and the gateway's SQLite database (default: a new temporary directory, removed afterwards)")
	fs.IntVar(&o.presignMax, "presign-max", 400_000, "most payments signed ahead of a measured phase (a voucher is about 1.5 KB); beyond it workers sign as they go")
	fs.DurationVar(&o.upDelay, "upstream-delay", 0, "channel mode: time the upstream waits before answering, standing for a real API's I/O (0: answer at once, which measures the gateway's whole overhead)")
	fs.BoolVar(&o.verify, "verify", true, "run the voucher verification micro-benchmark too")
	fs.BoolVar(&o.floor, "floor", true, "run phase F: the bare proxy plus one secp256k1 signature recovery per request, the least any voucher-checking gateway does")
	fs.BoolVar(&o.verbose, "v", false, "log the gateway's warnings and errors to stderr")
	fs.BoolVar(&o.paymentIDs, "payment-ids", false, "give every voucher an x402 payment identifier, as Payper's client SDK does, so the gateway keeps each answer for retries")
	fs.StringVar(&o.mode, "mode", modeChannels, "channels: the gateway with vouchers vs a bare proxy; exact: exact payments vs the official x402 stack")
	connections := fs.String("connections", "1,8,32", "exact mode: connection counts to measure, in order")
	chains := fs.String("chains", chainAnvil+","+chainDev, "exact mode: chains to run on, in order (anvil, dev)")
	flows := fs.String("flows", "before,after-headers,after-body,async", "exact mode: the gateway's settlement flows to measure (see bench/flows.go)")
	fs.StringVar(&o.interopDir, "interop", "interop", "exact mode: the folder holding the official stack's server and its npm packages (anvil included)")
	fs.StringVar(&o.payperBin, "payper", "", "exact mode: a payper binary to run as the gateway (default: build ./cmd/payper)")
	fs.BoolVar(&o.official, "official", true, "exact mode: measure the official x402 stack too")
	fs.IntVar(&o.sseRequests, "sse-requests", 20, "exact mode: paid and unpriced requests each for the time-to-first-event comparison (0 skips it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch o.mode {
	case modeExact:
		return o, o.parseExact(*connections, *chains, *flows)
	case modeChannels:
	default:
		return o, fmt.Errorf("-mode %q: want %s or %s", o.mode, modeChannels, modeExact)
	}
	if o.channels == 0 {
		o.channels = o.concurrency
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("-duration must be positive and -warmup not negative")
	case o.concurrency < 1:
		return o, errors.New("-concurrency must be at least 1")
	case o.channels < o.concurrency:
		// A channel's vouchers are sequential: two workers cannot pay through one channel.
		return o, fmt.Errorf("-channels (%d) must be at least -concurrency (%d): a channel's vouchers are sequential", o.channels, o.concurrency)
	case o.upDelay < 0:
		return o, errors.New("-upstream-delay must not be negative")
	case o.presignMax < 0:
		return o, errors.New("-presign-max must not be negative")
	}
	return o, nil
}

// parseExact checks exact mode's flags.
func (o *options) parseExact(connections, chains, flows string) error {
	for _, c := range strings.Split(connections, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-connections: %q is not a positive number", c)
		}
		o.connections = append(o.connections, n)
	}
	for _, c := range strings.Split(chains, ",") {
		c = strings.TrimSpace(c)
		if c != chainAnvil && c != chainDev {
			return fmt.Errorf("-chains: unknown chain %q (anvil, dev)", c)
		}
		if slices.Contains(o.chains, c) {
			return fmt.Errorf("-chains names %q twice", c)
		}
		o.chains = append(o.chains, c)
	}
	var err error
	if o.flows, err = parseFlows(flows); err != nil {
		return err
	}
	// Authorizations are signed before a phase and stay valid maxTimeoutSeconds; both servers
	// refuse one with less than about six seconds left.
	if limit := time.Duration(exactMaxTimeoutSeconds-60) * time.Second; o.warmup+o.duration > limit {
		return fmt.Errorf("exact mode: -warmup plus -duration must stay within %s, the validity of a pre-signed payment less a margin", limit)
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return errors.New("-duration must be positive and -warmup not negative")
	case o.sseRequests < 0:
		return errors.New("-sse-requests must not be negative")
	case o.presignMax < 0:
		return errors.New("-presign-max must not be negative")
	}
	return nil
}

// result is what either mode reports.
type result interface {
	writeJSON(io.Writer) error
	writeTable(io.Writer) error
	failures() int
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rep result
	if opts.mode == modeExact {
		r, err := runExact(ctx, opts, os.Stderr)
		if err != nil {
			if r != nil && len(r.Chains) > 0 {
				r.writeTable(os.Stdout) // what was measured before the failure
			}
			stop()
			fail(err)
		}
		rep = r
	} else {
		r, err := run(ctx, opts, os.Stderr)
		if err != nil {
			stop()
			fail(err)
		}
		rep = r
	}
	if opts.jsonOut {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeTable(os.Stdout)
	}
	if err != nil {
		fail(err)
	}
	if n := rep.failures(); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d requests failed\n", n)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
