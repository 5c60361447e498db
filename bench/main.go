// Command bench measures the Payper gateway in channel mode against a bare reverse proxy in one
// run: same upstream, same load generator with the same connection settings, same machine. It
// prints both targets' throughput and latency, the throughput ratio gateway/bare, the latency
// the gateway adds, and a voucher verification micro-benchmark, each against its target.
//
// Everything runs in this process: the embedded dev chain, the gateway (app.StartDev with
// channels enabled), the bare proxy (package proxy alone), a tiny upstream and the load
// generator. Phases, in order:
//
//	A  bare proxy, no payment header
//	F  the bare proxy plus one secp256k1 signature recovery per request (-floor=false skips it):
//	   the ceiling for any gateway that checks a voucher signature per request
//	B  gateway, every request paid with a pre-signed cumulative voucher
//	C  bare proxy again, to show drift between the two bare runs (-drift=false skips it)
//
// Each phase has a warm-up whose requests are not measured. Vouchers are signed before phase B
// starts, so the generator spends no CPU on signing while the gateway is measured; how many are
// signed follows an unmeasured calibration pass against the gateway (see presign.go). The
// process exits non-zero when a request fails (a transport error, a non-200 status, or a
// gateway response without a successful PAYMENT-RESPONSE), never because a target was missed.
//
//	go run ./bench -duration 10s -concurrency 32 -channels 32 -cpuprofile gateway.pprof
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
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
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured gateway phase to this file")
	fs.StringVar(&o.dataDir, "datadir", "", "directory for the chain and the gateway's SQLite database (default: a new temporary directory, removed afterwards)")
	fs.IntVar(&o.presignMax, "presign-max", 400_000, "most vouchers signed ahead of phase B (each is about 1.5 KB); beyond it workers sign as they go")
	fs.DurationVar(&o.upDelay, "upstream-delay", 0, "time the upstream waits before answering, standing for a real API's I/O (0: answer at once, which measures the gateway's whole overhead)")
	fs.BoolVar(&o.verify, "verify", true, "run the voucher verification micro-benchmark too")
	fs.BoolVar(&o.floor, "floor", true, "run phase F: the bare proxy plus one secp256k1 signature recovery per request, the least any voucher-checking gateway does")
	fs.BoolVar(&o.verbose, "v", false, "log the gateway's warnings and errors to stderr")
	fs.BoolVar(&o.paymentIDs, "payment-ids", false, "give every voucher an x402 payment identifier, as Payper's client SDK does, so the gateway keeps each answer for retries")
	if err := fs.Parse(args); err != nil {
		return o, err
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

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, opts, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if opts.jsonOut {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if n := rep.failures(); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d requests failed\n", n)
		os.Exit(1)
	}
}
