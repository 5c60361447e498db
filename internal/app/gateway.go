package app

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/breaker"
	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/config"
	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/internal/httpguard"
	"github.com/payper/payper/internal/keyfile"
	batchmethod "github.com/payper/payper/method/batch"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/pricing"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/store"
)

// Gateway is a configured, ready-to-serve Payper gateway.
type Gateway struct {
	cfg        *config.Config
	log        *slog.Logger
	store      store.Store
	chain      *evm.Client
	handler    http.Handler
	reconciler *exactmethod.Reconciler
	settlerKey *ecdsa.PrivateKey
	claimer    *batchmethod.Claimer // nil unless channels are enabled
	watcher    *batchmethod.Watcher // nil unless channels are enabled
	channels   *batchmethod.Method  // nil unless channels are enabled
	queue      *settle.Queue        // settles async payments; always run, so a queue left by an earlier configuration drains
	// reconcileEvery is how often unfinished payments are reconciled (default 30 s).
	reconcileEvery time.Duration

	breaker  *breaker.Breaker                  // the upstream's; nil when disabled
	now      func() time.Time                  // nil means time.Now
	queueOff bool                              // see hooks
	limiter  atomic.Pointer[httpguard.Limiter] // set by Serve
}

// NewGateway opens the store, dials the chain (checking its id) and builds the handler chain.
func NewGateway(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	return newGateway(ctx, cfg, log, hooks{})
}

// hooks let tests control what the gateway cannot be configured to do.
type hooks struct {
	// now is the clock of the decisions that depend on time passing: the upstream breaker's
	// cool-down and the last validity check before a settlement is sent.
	now func() time.Time
	// queueOff leaves the settlement queue alone: async payments stay queued until the test
	// works the queue itself.
	queueOff bool
}

func newGateway(ctx context.Context, cfg *config.Config, log *slog.Logger, h hooks) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, err := keyfile.Read(cfg.SettlerKeyFile)
	if err != nil {
		return nil, fmt.Errorf("settler key: %w", err)
	}
	maxFee, minGas, err := cfg.SettlementLimits()
	if err != nil {
		return nil, err
	}
	chain, err := evm.DialEndpoints(ctx, cfg.RPCEndpoints(), cfg.ChainID(), evm.Options{
		SettlerKey: key, Confirmations: uint64(cfg.Confirmations), Logger: log.With("component", "chain"),
		ReplaceAfter: cfg.Settlement.ReplaceAfter, MaxFeePerGas: maxFee, MinGasBalance: minGas,
	})
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", cfg.Network, err)
	}
	if err := chain.RequireSettlerFunds(ctx); err != nil {
		chain.Close()
		return nil, fmt.Errorf("chain %s: %w", cfg.Network, err)
	}
	if err := checkAsset(ctx, chain, cfg, log); err != nil {
		chain.Close()
		return nil, err
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		chain.Close()
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: log, store: st, chain: chain, settlerKey: key, now: h.now, queueOff: h.queueOff}
	if g.handler, err = g.buildHandler(); err != nil {
		g.Close()
		return nil, err
	}
	g.reconciler = &exactmethod.Reconciler{Ledger: st, Chain: chain, Logger: log.With("component", "reconciler")}
	return g, nil
}

// checkAsset refuses to start against a token address with no code: every payment would fail. A
// name() that differs from the configured EIP-712 name is only a warning, since some tokens sign
// under another domain name than they report.
func checkAsset(ctx context.Context, chain *evm.Client, cfg *config.Config, log *slog.Logger) error {
	asset := common.HexToAddress(cfg.Asset.Address)
	ok, err := chain.HasCode(ctx, asset)
	if err != nil {
		return fmt.Errorf("asset %s: %w", asset.Hex(), err)
	}
	if !ok {
		return fmt.Errorf("asset %s has no contract code on %s", asset.Hex(), cfg.Network)
	}
	if name, err := chain.TokenName(ctx, asset); err == nil && name != cfg.Asset.Name {
		log.Warn("asset name() differs from the configured EIP-712 name; payments signed for the wrong domain will fail",
			"name", name, "configured", cfg.Asset.Name)
	}
	return nil
}

func (g *Gateway) buildHandler() (http.Handler, error) {
	cfg := g.cfg
	rules, err := cfg.PricingRules()
	if err != nil {
		return nil, err
	}
	table, err := pricing.NewWithRouting(rules, cfg.PricingRouting())
	if err != nil {
		return nil, err
	}
	offer := exact.Offer{
		Network: cfg.Network, Asset: common.HexToAddress(cfg.Asset.Address),
		Name: cfg.Asset.Name, Version: cfg.Asset.Version,
		PayTo: common.HexToAddress(cfg.PayTo), MaxTimeoutSeconds: int64(cfg.MaxTimeoutSeconds),
	}
	margin := cfg.Settlement.InclusionMargin
	method := &exactmethod.Method{
		Offer: offer,
		// A payment that could not be settled after verification is refused at verification,
		// before the upstream is called for nothing. With the default margin this is the
		// reference's own 6 s; it is stricter only when the operator raises the margin.
		Verifier:        &exact.Verifier{Chain: g.chain, ValidityMargin: max(exact.DefaultValidityMargin, margin)},
		Ledger:          g.store,
		Chain:           g.chain,
		InclusionMargin: margin,
		Now:             g.now,
		Logger:          g.log.With("component", "settle"),
		Batcher:         g.batcher(),
	}
	if err := g.asyncSettlement(method); err != nil {
		return nil, err
	}
	methods := []paywall.Method{method}
	if cfg.Channels.Enabled {
		channelMethod, err := g.channelMethod()
		if err != nil {
			return nil, err
		}
		g.channels = channelMethod
		// Channels first: a client that can use them pays without a transaction per request;
		// one that cannot falls through to exact.
		methods = []paywall.Method{channelMethod, method}
	}
	upstream, gate, err := g.buildUpstream(table)
	if err != nil {
		return nil, err
	}
	flow, routeFlow, err := settlementFlows(cfg)
	if err != nil {
		return nil, err
	}
	pw, err := paywall.New(paywall.Options{
		Pricer: table, Methods: methods, Flow: flow, RouteFlow: routeFlow,
		Idempotency:    g.idempotency(),
		MaxHeaderBytes: cfg.MaxPaymentHeaderBytes, ChargeTimeout: cfg.SettlementTimeout,
		Gate: gate, Logger: g.log.With("component", "paywall"),
	})
	if err != nil {
		return nil, err
	}
	return pw.Wrap(upstream), nil
}

// batcher gathers exact settlements that complete together into one transaction, or is nil when
// settlement.batchMax is 1.
func (g *Gateway) batcher() *settle.Batcher {
	s := g.cfg.Settlement
	if s.BatchMax <= 1 {
		return nil
	}
	return &settle.Batcher{Chain: g.chain, Window: s.BatchWindow, MaxBatch: s.BatchMax, Logger: g.log.With("component", "batcher")}
}

// channelMethod builds batch-settlement on the canonical escrow, with the settler key as the
// channels' receiver authorizer.
func (g *Gateway) channelMethod() (*batchmethod.Method, error) {
	cfg := g.cfg
	minDeposit, err := cfg.ChannelMinDeposit()
	if err != nil {
		return nil, err
	}
	claimMin, err := cfg.ChannelClaimMinValue()
	if err != nil {
		return nil, err
	}
	offer := batch.Offer{
		Network: cfg.Network, Asset: common.HexToAddress(cfg.Asset.Address), Name: cfg.Asset.Name, Version: cfg.Asset.Version,
		PayTo: common.HexToAddress(cfg.PayTo), ReceiverAuthorizer: g.chain.SettlerAddress(),
		WithdrawDelay: cfg.Channels.WithdrawDelay, MinDeposit: minDeposit, EnforceMinDeposit: cfg.Channels.EnforceMinDeposit,
		MaxTimeoutSeconds: int64(cfg.MaxTimeoutSeconds),
	}
	if err := offer.Validate(); err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	verifier, err := batch.NewVerifier(batch.VerifierConfig{Network: cfg.Network, Settlement: escrow.BatchSettlementAddress})
	if err != nil {
		return nil, err
	}
	g.claimer = &batchmethod.Claimer{
		Store: g.store, Chain: g.chain, Network: cfg.Network, Token: offer.Asset, Receiver: offer.PayTo,
		Authorizer: g.settlerKey, Verifier: verifier, MinValue: claimMin, Logger: g.log.With("component", "claimer"),
		Leases: g.store,
	}
	g.watcher = &batchmethod.Watcher{
		Store: g.store, Chain: watchChain{g.chain}, Network: cfg.Network, Logger: g.log.With("component", "watcher"),
		Claim: func(ctx context.Context) error { _, err := g.claimer.RunOnce(ctx); return err },
	}
	refunds := &batchmethod.Refunds{Chain: g.chain, Authorizer: g.settlerKey, MarkClaimed: g.store.MarkChannelClaimed}
	return &batchmethod.Method{Offer: offer, Verifier: verifier, Store: g.store, Chain: g.chain, Refunds: refunds,
		Logger: g.log.With("component", "channels"), InFlightFor: inFlightFor(cfg)}, nil
}

// inFlightFor is how long a channel charge may stay in flight: longer than the slowest request
// the upstream bounds allow, plus the charge timeout, so that only a request nobody is serving
// any more (its process died) has its charge given back as expired.
func inFlightFor(cfg *config.Config) time.Duration {
	longest := cfg.UpstreamTimeouts.Total
	for _, r := range cfg.Routes {
		longest = max(longest, r.Timeouts.Over(cfg.UpstreamTimeouts).Total)
	}
	return max(batchmethod.DefaultInFlightFor, longest+cfg.SettlementTimeout+time.Minute)
}

// watchChain adapts the chain client's escrow events to the watcher's.
type watchChain struct{ *evm.Client }

func (w watchChain) ChannelEvents(ctx context.Context, from, to uint64) ([]batchmethod.Event, error) {
	evs, err := w.Client.ChannelEvents(ctx, from, to)
	out := make([]batchmethod.Event, len(evs))
	for i, e := range evs {
		out[i] = batchmethod.Event{ChannelID: e.ChannelID, Name: e.Name, Block: e.Block}
	}
	return out, err
}

// Watcher is the escrow watcher, or nil when channels are disabled.
func (g *Gateway) Watcher() *batchmethod.Watcher { return g.watcher }

// Claimer is the channel claim job, or nil when channels are disabled.
func (g *Gateway) Claimer() *batchmethod.Claimer { return g.claimer }

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Store is the gateway's store.
func (g *Gateway) Store() store.Store { return g.store }

// watchInterval is how often the escrow's events are read: withdrawals must stop spending soon.
const watchInterval = 2 * time.Second

// Serve serves on ln until ctx ends, then shuts down gracefully. It also runs the reconciler.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv, ln := g.newServer(ln)
	recCtx, stopRec := context.WithCancel(ctx)
	defer stopRec()
	if _, err := g.reconciler.RunOnce(ctx); err != nil {
		g.log.Warn("start-up reconciliation failed", "err", err)
	}
	if _, err := g.reconciler.RecheckOnce(ctx); err != nil {
		g.log.Warn("start-up settlement re-check failed", "err", err)
	}
	// The background jobs use the store and the chain: Serve returns only once they stopped, so
	// that Close never pulls either from under a claim or a reconciliation in progress.
	var jobs sync.WaitGroup
	defer jobs.Wait()
	defer stopRec() // runs first: stop the jobs, then wait for them
	reconcileEvery := g.reconcileEvery
	if reconcileEvery <= 0 {
		reconcileEvery = 30 * time.Second
	}
	jobs.Go(func() { g.reconciler.Run(recCtx, reconcileEvery) })
	if !g.queueOff {
		jobs.Go(func() { g.queue.Run(recCtx) })
	}
	jobs.Go(func() { g.chain.WatchSettlerFunds(recCtx, time.Minute) })
	if g.claimer != nil {
		jobs.Go(func() { g.claimer.Run(recCtx, g.cfg.Channels.ClaimInterval) })
		jobs.Go(func() { g.releaseExpiredCharges(recCtx) })
	}
	if g.watcher != nil {
		if err := g.watcher.Start(ctx); err != nil {
			g.log.Warn("refreshing channels at start failed; the watcher retries every round", "err", err)
		}
		jobs.Go(func() { g.watcher.Run(recCtx, watchInterval) })
	}
	jobs.Go(func() { purgeKeptResponses(recCtx, g.store, purgeInterval, g.log.With("component", "idempotency")) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// releaseExpiredCharges gives back, soon after they expire, the channel charges that processes
// which died left in flight, so that their payers can spend or take back that money without
// waiting for a claim round.
func (g *Gateway) releaseExpiredCharges(ctx context.Context) {
	every := min(max(g.channels.InFlightFor/4, time.Second), 30*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if n, err := g.store.ReleaseExpiredCharges(ctx, time.Now()); err != nil {
			g.log.Warn("giving back expired in-flight charges failed", "err", err)
		} else if n > 0 {
			g.log.Warn("gave back charges whose requests were never answered", "count", n)
		}
	}
}

// Close releases the store and the chain connection.
func (g *Gateway) Close() {
	if g.store != nil {
		g.store.Close()
	}
	if g.chain != nil {
		g.chain.Close()
	}
}
