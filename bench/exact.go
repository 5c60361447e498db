package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/payper/payper/x402"
)

// Exact mode measures Payper's exact payments against the official x402 TypeScript stack on
// the same chain, with the same load generator and the same pre-signed payments, in one run:
// for every chain asked for (anvil, the embedded dev chain) and every connection count, the
// official stack, then one Payper gateway per settlement flow. Each server under test is a
// process of its own (node for the official stack, the payper binary for Payper) beside the
// chain (anvil's process, or the embedded chain inside this one); the load generator and
// Payper's upstream run here.

// exactRequestTimeout bounds one paid request: far beyond any settlement, short enough that a
// stuck server fails the phase instead of hanging the run.
const exactRequestTimeout = 2 * time.Minute

// minPresignRPS is the least rate exact mode signs ahead for, whatever the calibration says.
const minPresignRPS = 200

// serverUnderTest is the official stack or one Payper gateway, running on one chain.
type serverUnderTest struct {
	label    string // in the report
	flow     string // "" for the official stack
	addr     string // host:port
	proc     *child
	offer    x402.PaymentRequirements
	resource *x402.ResourceInfo
}

// runExact runs exact mode. A failure to set a chain up ends the run; failed requests are
// reported and make the command exit non-zero, as in channel mode.
func runExact(ctx context.Context, o options, logw io.Writer) (*exactReport, error) {
	progress := func(format string, args ...any) { fmt.Fprintf(logw, "bench: "+format+"\n", args...) }
	log := slog.New(slog.DiscardHandler)
	if o.verbose {
		log = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dataDir := o.dataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "payper-bench-exact-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	rep := &exactReport{
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Connections: o.connections, WarmupSeconds: o.warmup.Seconds(), PhaseSeconds: o.duration.Seconds(),
		Price: exactPrice, MaxTimeoutSeconds: exactMaxTimeoutSeconds, DataDir: dataDir,
	}
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		rep.NodeVersion = strings.TrimSpace(string(out))
	}
	bin := o.payperBin
	if bin == "" {
		progress("building the payper command")
		var err error
		if bin, err = buildPayper(ctx, dataDir); err != nil {
			return nil, err
		}
	}
	for _, name := range o.chains {
		cr, err := runExactChain(ctx, o, name, bin, filepath.Join(dataDir, name), progress, log)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", name, err)
		}
		rep.Chains = append(rep.Chains, cr)
	}
	for _, t := range exactTargets {
		if !o.hasFlow(t.Flow) && !slices.Contains(rep.Skipped, t.Flow) {
			rep.Skipped = append(rep.Skipped, t.Flow)
		}
	}
	return rep, ctx.Err()
}

// startExactChain starts the chain called name.
func startExactChain(ctx context.Context, o options, name, dir string, accounts int, log *slog.Logger) (*chainEnv, error) {
	switch name {
	case chainAnvil:
		bin, err := anvilBinary(o.interopDir)
		if err != nil {
			return nil, err
		}
		return startAnvil(ctx, bin, accounts)
	case chainDev:
		return startDevChain(ctx, filepath.Join(dir, "chain"), accounts, log.With("component", "devchain"))
	}
	return nil, fmt.Errorf("unknown chain %q", name)
}

// runExactChain starts a chain and the servers on it, measures them and stops everything.
func runExactChain(ctx context.Context, o options, name, bin, dir string, progress func(string, ...any), log *slog.Logger) (*chainReport, error) {
	progress("%s: starting the chain", name)
	env, err := startExactChain(ctx, o, name, dir, firstSettlerAccount+len(o.flows), log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	cr := &chainReport{Name: env.name, Detail: env.detail, Network: env.network(), Token: env.token.Hex()}

	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	upstream := newServer(exactUpstream())
	go upstream.Serve(upLn)
	defer upstream.Close()

	var servers []serverUnderTest
	defer func() {
		for _, s := range servers {
			s.proc.stop()
		}
	}()
	if o.official {
		progress("%s: starting the official x402 stack (Express, @x402/express, in-process facilitator)", name)
		proc, addr, err := startOfficial(ctx, o.interopDir, env)
		if err != nil {
			return nil, err
		}
		servers = append(servers, serverUnderTest{label: "official x402 (Express)", addr: addr, proc: proc})
	}
	for i, f := range o.flows {
		progress("%s: starting a Payper gateway, flow %s", name, f.Name)
		profile := ""
		if o.cpuProfile != "" {
			profile = fmt.Sprintf("%s-%s-%s.pprof", strings.TrimSuffix(o.cpuProfile, ".pprof"), name, f.Name)
		}
		proc, addr, err := startPayper(ctx, bin, filepath.Join(dir, "gateway-"+f.Name), env, "http://"+upLn.Addr().String(), f, firstSettlerAccount+i, profile)
		if err != nil {
			return nil, err
		}
		servers = append(servers, serverUnderTest{label: "payper " + f.Name, flow: f.Name, addr: addr, proc: proc})
	}
	setup := &http.Client{Timeout: time.Minute}
	defer setup.CloseIdleConnections()
	for i := range servers {
		s := &servers[i]
		if s.offer, s.resource, err = fetchExactOffer(ctx, setup, "http://"+s.addr+quotePath); err != nil {
			return nil, fmt.Errorf("%s: %w", s.label, err)
		}
	}

	for _, conns := range o.connections {
		for _, s := range servers {
			progress("%s: %s, %d connection(s): calibrating, signing ahead, %s warm-up + %s", name, s.label, conns, o.warmup, o.duration)
			ph, err := measureExact(ctx, s, conns, o, env)
			if err != nil {
				return nil, err
			}
			cr.Phases = append(cr.Phases, ph)
			if exit := s.proc.exited(); exit != nil {
				return nil, exit
			}
		}
	}
	if o.sseRequests > 0 {
		for _, s := range servers {
			if s.flow == "" {
				continue
			}
			progress("%s: %s: time to first event, paid SSE route vs the same route unpriced (%d requests each)", name, s.label, o.sseRequests)
			r, err := measureSSE(ctx, s, o.sseRequests)
			if err != nil {
				return nil, err
			}
			cr.SSE = append(cr.SSE, r)
		}
	}
	cr.compare()
	return cr, ctx.Err()
}

// measureExact runs one server at one connection count: an unmeasured calibration pass that
// signs as it goes, then the pre-signed phase (warm-up, measured window).
func measureExact(ctx context.Context, s serverUnderTest, conns int, o options, env *chainEnv) (exactPhase, error) {
	plan := newAuthPlan(s.offer, s.resource, quotePath, s.addr, conns)
	t := target{
		name: fmt.Sprintf("%s, %d conn", s.label, conns), addr: s.addr, request: plan.request, check: checkPaidFast,
		timeout: exactRequestTimeout, children: []roleChild{{role: "server", child: s.proc}},
	}
	if env.anvil != nil {
		t.children = append(t.children, roleChild{role: "chain", child: env.anvil})
	}
	ph := exactPhase{Server: s.label, Flow: s.flow, Connections: conns}
	firstBlock, blockErr := env.rpc.blockNumber(ctx)
	calibration := runPhase(ctx, t, conns, 0, max(o.warmup, time.Second), nil)
	if calibration.Failures > 0 {
		calibration.Name += " (calibration)"
		ph.Result = calibration
		return ph, nil
	}
	// A cold server (node compiles as it goes) calibrates low; signing is cheap next to a paid
	// request, so a floor keeps the measured phase from signing on the spot.
	perWorker := presignBudget(max(calibration.RPS, minPresignRPS), 0, o.warmup+o.duration, conns, o.presignMax)
	var err error
	if ph.Presign, err = plan.presign(perWorker); err != nil {
		return ph, err
	}
	ph.Presign.CalibrationRPS = calibration.RPS
	runtime.GC()
	ph.Result = runPhase(ctx, t, conns, o.warmup, o.duration, nil)
	plan.release()
	if at, err := env.rpc.latestBlockTime(ctx); err == nil {
		ph.ChainClockLeadSeconds = time.Until(at).Seconds()
	}
	if last, err := env.rpc.blockNumber(ctx); err == nil && blockErr == nil && last >= firstBlock {
		ph.Blocks = last - firstBlock
		ph.Payments = calibration.Served + ph.Result.Served
	}
	return ph, nil
}

// exactUpstream is Payper's upstream in exact mode: the quote route and the event streams.
func exactUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case quotePath:
			serveQuote(w)
		case ssePaidPath, sseFreePath:
			serveEvents(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
