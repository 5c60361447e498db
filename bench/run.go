package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// run sets everything up, runs the phases and returns the report. Progress goes to logw.
func run(ctx context.Context, o options, logw io.Writer) (*report, error) {
	progress := func(format string, args ...any) { fmt.Fprintf(logw, "bench: "+format+"\n", args...) }
	log := slog.New(slog.DiscardHandler)
	if o.verbose {
		log = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dataDir := o.dataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "payper-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}

	progress("starting the dev chain, the gateway (channels on), the bare proxy and the upstream")
	t, err := startTargets(ctx, dataDir, o.upDelay, log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	gatewayURL := "http://" + t.gatewayAddr + quotePath
	setup := &http.Client{Timeout: time.Minute}
	offer, err := fetchOffer(ctx, setup, gatewayURL)
	if err != nil {
		return nil, err
	}
	progress("opening %d channels (one deposit each, from test accounts %d-%d)", o.channels, firstPayer, firstPayer+payerCount-1)
	set, err := openChannels(ctx, setup, gatewayURL, offer, o.channels)
	if err != nil {
		return nil, err
	}
	set.paymentIDs = o.paymentIDs
	setup.CloseIdleConnections()

	rep := &report{
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Workers: o.concurrency, Channels: o.channels, WarmupSeconds: o.warmup.Seconds(),
		PhaseSeconds: o.duration.Seconds(), DataDir: dataDir, UpstreamDelay: float64(o.upDelay.Microseconds()), Price: set.price.String(), Network: offer.Network,
		ThroughputTarget: throughputTarget, VerifyTargetMicros: verifyTargetMicros,
	}
	if o.verify {
		progress("voucher verification micro-benchmark (GOMAXPROCS=1)")
		if rep.Verify, err = benchVerify(set); err != nil {
			return nil, err
		}
	}

	unpaid := func(name, addr string) target {
		req := buildRequest(addr, "")
		return target{
			name: name, addr: addr, check: checkOK,
			request: func(int, int) ([]byte, bool, error) { return req, false, nil },
		}
	}
	bare := func(name string) target { return unpaid(name, t.bareAddr) }
	progress("phase A: bare proxy, %d workers, %s warm-up + %s", o.concurrency, o.warmup, o.duration)
	rep.Bare = phase(ctx, bare("A bare proxy"), o, nil)
	if o.floor {
		progress("phase F: bare proxy plus one signature recovery per request")
		f := phase(ctx, unpaid("F bare + 1 ecrecover", t.floorAddr), o, nil)
		rep.Floor = &f
	}

	plan := newVoucherPlan(set, o.concurrency, t.gatewayAddr)
	gateway := target{
		name: "B gateway, vouchers", addr: t.gatewayAddr, request: plan.request, check: checkPaidFast, stopOnFailure: true,
	}
	calibrate := max(o.warmup, time.Second)
	progress("calibrating the gateway for %s (unmeasured, vouchers signed as they go)", calibrate)
	calibration := phase(ctx, gateway, options{concurrency: o.concurrency, duration: calibrate}, nil)
	if calibration.Failures > 0 {
		calibration.Name = "B gateway, calibration"
		calibration.SignedInline = 0 // expected while calibrating, not a note about phase B
		rep.Gateway = calibration
		rep.compare()
		return rep, nil
	}
	perWorker := presignBudget(calibration.RPS, rep.Bare.RPS, o.warmup+o.duration, o.concurrency, o.presignMax)
	progress("signing %d vouchers ahead of phase B", perWorker*o.concurrency)
	if rep.Presign, err = plan.presign(perWorker); err != nil {
		return nil, err
	}
	rep.Presign.CalibrationRPS = calibration.RPS
	runtime.GC()

	var profile *os.File
	var profileErr error
	startProfile := func() {
		if o.cpuProfile == "" {
			return
		}
		if profile, profileErr = os.Create(o.cpuProfile); profileErr == nil {
			if profileErr = pprof.StartCPUProfile(profile); profileErr != nil {
				profile.Close()
				profile = nil
			}
		}
	}
	progress("phase B: gateway with vouchers, %d workers over %d channels", o.concurrency, o.channels)
	rep.Gateway = phase(ctx, gateway, o, startProfile)
	if profile != nil {
		pprof.StopCPUProfile()
		profileErr = profile.Close()
		rep.CPUProfile = o.cpuProfile
	}
	if profileErr != nil {
		return nil, fmt.Errorf("cpu profile: %w", profileErr)
	}
	plan.release()
	runtime.GC()

	if o.drift {
		progress("phase C: bare proxy again")
		c := phase(ctx, bare("C bare proxy again"), o, nil)
		rep.BareAgain = &c
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.compare()
	return rep, nil
}

func phase(ctx context.Context, t target, o options, onMeasure func()) phaseResult {
	return runPhase(ctx, t, o.concurrency, o.warmup, o.duration, onMeasure)
}
