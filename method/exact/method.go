package exactmethod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// Ledger is the part of the store settlement writes to.
type Ledger interface {
	ReservePayment(ctx context.Context, p *store.Payment) (int64, error)
	MarkFirstSubmitted(ctx context.Context, id int64, txHash string) error
	MarkSubmitted(ctx context.Context, id int64, txHash string) error
	MarkSettled(ctx context.Context, id int64, txHash string) error
	MarkFailed(ctx context.Context, id int64, reason string) error
	ReleasePayment(ctx context.Context, id int64, reason string) error
}

// Chain reads token state and sends settlement transactions through the engine.
type Chain interface {
	exact.ChainReader
	settle.TxChain
}

// Method is the exact scheme as a paywall.Method.
type Method struct {
	Offer    exact.Offer
	Verifier *exact.Verifier
	Ledger   Ledger
	Chain    Chain
	// InclusionMargin is how long an authorization must still be valid when its transfer is
	// sent, for the transaction to be mined before validBefore; one closer to expiry is released
	// and never sent, since it would revert and burn the settler's gas. Zero sends anything not
	// yet expired.
	InclusionMargin time.Duration
	// Async, when set, defers payments on FlowAsync routes (async.go); without it they settle
	// as in FlowAuto.
	Async  *Async
	Now    func() time.Time // default time.Now
	Logger *slog.Logger
	// Batcher, when set, settles payments that complete together in one transaction.
	Batcher *settle.Batcher
}

// Requirements implements paywall.Method.
func (e *Method) Requirements(price *big.Int) x402.PaymentRequirements {
	return e.Offer.Requirements(price)
}

// SettlesOnChain implements paywall.OnChain: when an exact payment settles follows the route's
// flow.
func (e *Method) SettlesOnChain() {}

// fundsReporter is a Chain that knows when its settler cannot pay for gas.
type fundsReporter interface{ SettlerFundsError() error }

// Authorize implements paywall.Method: verify, then reserve the authorization's nonce. While the
// settler cannot pay for gas, nothing could be settled: the payment is turned away as unavailable
// before anything is verified or reserved.
func (e *Method) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info paywall.RequestInfo) (paywall.Charge, error) {
	if f, ok := e.Chain.(fundsReporter); ok {
		if err := f.SettlerFundsError(); err != nil {
			return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
		}
	}
	// Every RPC endpoint's breaker is open: nothing could be verified or settled, so the
	// payment is not even looked at.
	if r, ok := e.Chain.(chainGate); ok {
		if wait, refusing := r.Refusing(); refusing {
			return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, &chainRefusing{wait: wait})
		}
	}
	v, err := e.Verifier.Verify(ctx, req, p)
	if errors.Is(err, exact.ErrChainUnavailable) {
		return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	a := v.Payload.Authorization
	rec := &store.Payment{
		Scheme: exact.Scheme, Network: req.Network, Asset: v.Token.Hex(), Payer: a.From.Hex(),
		PayTo: a.To.Hex(), Amount: a.Value, Nonce: a.Nonce.Hex(),
		ValidBefore: storedValidBefore(a.ValidBefore),
		Method:      info.Method, Route: info.Route, Resource: info.Resource,
	}
	if info.Flow == paywall.FlowAsync {
		if c, deferred, err := e.reserveAsync(ctx, v, rec); deferred || err != nil {
			return c, err
		}
	}
	id, err := e.Ledger.ReservePayment(ctx, rec)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return nil, x402.Failf(x402.ReasonExactNonceAlreadyUsed, "authorization nonce %s is already used by another request", a.Nonce.Hex())
	case err != nil:
		return nil, fmt.Errorf("%w: reserve payment: %w", paywall.ErrUnavailable, err)
	}
	failpoint.Hit(failpoint.ExactReserved)
	c := &charge{e: e, id: id, v: v, network: req.Network}
	if e.Batcher != nil {
		// Its settlement is coming once the upstream answers: a batch may wait for it.
		c.arrived = e.Batcher.Expect()
	}
	return c, nil
}

// chainGate is implemented by a Chain whose RPC circuit breakers can all be open.
type chainGate interface {
	Refusing() (time.Duration, bool)
}

// chainRefusing is a payment turned away because the chain cannot be reached; it carries how
// long until a probe may pass, for the caller's Retry-After.
type chainRefusing struct{ wait time.Duration }

func (e *chainRefusing) Error() string {
	return "the chain RPC is unavailable (circuit breaker open)"
}

func (e *chainRefusing) RetryAfter() time.Duration { return e.wait }

func (e *Method) log() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

type charge struct {
	e       *Method
	id      int64
	v       *exact.Verified
	network string
	queued  bool        // settled by the queue worker, its request long answered
	prior   common.Hash // a requeued payment's last transaction, which may still have gone out
	arrived func()      // withdraws the batcher's expectation of this payment; nil when none
}

// arrive tells the batcher that this payment's settlement is no longer to be waited for.
func (c *charge) arrive() {
	if c.arrived != nil {
		c.arrived()
	}
}

func (c *charge) Payer() string { return c.v.Payer.Hex() }

func (c *charge) Cancel(ctx context.Context, reason string) {
	c.arrive()
	if err := c.e.Ledger.ReleasePayment(ctx, c.id, reason); err != nil {
		c.e.log().Error("releasing a reserved payment failed", "payment", c.id, "err", err)
	}
}

// Complete submits the authorization and waits for it to be mined.
func (c *charge) Complete(ctx context.Context) (*x402.SettlementResponse, error) {
	s, _, err := c.settle(ctx)
	return s, err
}

// errSentElsewhere is a write-ahead record refused because another sender recorded a
// transaction for the payment first: that sender broadcasts it and records its outcome.
var errSentElsewhere = errors.New("settle: another sender is settling this payment")

// settle sends the transfer with a write-ahead record of its hash, waits for it to be mined and
// records the outcome. A transfer that cannot succeed is recorded failed (released when it was
// never sent); one not mined in time stays submitted for the reconciler. It also returns the
// hash of the last transaction it recorded before a send that certainly did not go out, zero
// otherwise, so that a queued payment can be put back in the queue.
func (c *charge) settle(ctx context.Context) (*x402.SettlementResponse, common.Hash, error) {
	a := c.v.Payload.Authorization
	defer c.arrive() // whichever way it ends before joining a batch
	if s, ok := c.settledBefore(ctx); ok {
		return s, common.Hash{}, nil
	}
	// The window was checked at verification, but the protected handler ran since: an
	// authorization that cannot be mined before it expires is given back, not broadcast.
	if err := c.checkStillValid(); err != nil {
		c.e.log().Warn("authorization too close to expiry to settle; released, nothing sent",
			"payment", c.id, "payer", c.Payer(), "valid_before", a.ValidBefore, "margin", c.e.InclusionMargin)
		c.fail(ctx, x402.ReasonExactValidBefore)
		return nil, common.Hash{}, err
	}
	// A payer contract's signature reaches it unchanged, in the form it accepted.
	data, err := c.v.TransferData()
	if err != nil {
		c.fail(ctx, x402.ReasonExactFailedToParseSignature)
		return nil, common.Hash{}, x402.Fail(x402.ReasonExactFailedToParseSignature, "signature cannot be submitted", err)
	}
	var recorded atomic.Value // common.Hash of the last write-ahead record
	if c.e.Batcher != nil {
		return c.settleBatched(ctx, data, &recorded)
	}
	sent := settle.SendAndWait(ctx, c.e.Chain, settle.Call{To: c.v.Token, Data: data, OnSigned: c.recordSigned(ctx, &recorded),
		AfterSend: func() { failpoint.Hit(failpoint.ExactBroadcast) }})
	err = sent.Err
	unsent := common.Hash{}
	if h, ok := recorded.Load().(common.Hash); ok && errors.Is(err, txn.ErrNotSent) {
		unsent = h
	}
	if !sent.Waited {
		switch {
		case errors.Is(err, errSentElsewhere):
			return nil, common.Hash{}, err
		case errors.Is(err, txn.ErrSettlerUnfunded):
			c.e.log().Error("a payment could not be settled: the settler cannot pay for gas", "payment", c.id, "err", err)
			if c.requeueable(err) {
				return nil, unsent, err
			}
			c.fail(ctx, x402.ReasonUnexpectedSettleError)
			return nil, common.Hash{}, x402.Fail(x402.ReasonUnexpectedSettleError, "the gateway cannot pay for settlement gas right now; nothing was charged",
				fmt.Errorf("%w: %w", paywall.ErrUnavailable, err))
		default:
			if c.requeueable(err) {
				return nil, unsent, err
			}
			reason := c.diagnose(ctx, err)
			if reason == x402.ReasonExactNonceAlreadyUsed {
				// The earlier transaction of a requeued payment may be what used it.
				if s, ok := c.settledBefore(ctx); ok {
					return s, common.Hash{}, nil
				}
			}
			c.fail(ctx, reason)
			return nil, common.Hash{}, x402.Fail(reason, "the payment could not be settled", err)
		}
	}
	switch {
	case errors.Is(err, txn.ErrFailed):
		c.fail(ctx, x402.ReasonExactTransactionFailed)
		return nil, common.Hash{}, x402.Fail(x402.ReasonExactTransactionFailed, "the settlement transaction reverted", err)
	case err != nil:
		// Still pending: the record stays submitted and the reconciler settles it later. The
		// response is withheld because payment is not yet certain.
		return nil, common.Hash{}, x402.Fail(x402.ReasonSettlementPending, "settlement transaction "+sent.Tx.Hex()+" is not mined yet", err)
	}
	return c.settled(ctx, sent.Receipt), common.Hash{}, nil
}

// recordSigned is the write-ahead hook of a transaction carrying the payment: its hash is
// recorded before it is broadcast, and the last one recorded is kept in recorded. It is also
// called for a replacement of a slow transaction, which a later wait (the reconciler's) may send
// after this request ended: not bound to the request.
func (c *charge) recordSigned(ctx context.Context, recorded *atomic.Value) func(common.Hash) error {
	return func(h common.Hash) error {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		// The first record may only move a reserved payment: of two senders of one payment
		// (two queue workers), only the first to record its transaction broadcasts it. Later
		// ones (replacements, a batch sent again without a member) replace the hash.
		record := c.e.Ledger.MarkFirstSubmitted
		if recorded.Load() != nil {
			record = c.e.Ledger.MarkSubmitted
		}
		if err := record(hctx, c.id, h.Hex()); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("%w: %w", errSentElsewhere, err)
			}
			return err
		}
		recorded.Store(h)
		failpoint.Hit(failpoint.ExactWriteAhead)
		return nil
	}
}

// settled records the payment settled by receipt's transaction and answers it.
func (c *charge) settled(ctx context.Context, receipt *types.Receipt) *x402.SettlementResponse {
	failpoint.Hit(failpoint.ExactMined)
	if err := c.e.Ledger.MarkSettled(ctx, c.id, receipt.TxHash.Hex()); err != nil {
		// The money moved; serve the payer. The reconciler records it once the store is back.
		c.e.log().Error("recording a settled payment failed", "payment", c.id, "tx", receipt.TxHash, "err", err)
	}
	return &x402.SettlementResponse{
		Success: true, Payer: c.Payer(), Transaction: receipt.TxHash.Hex(), Network: c.network,
		Amount: c.v.Payload.Authorization.Value.String(),
	}
}

// txLookup is a Chain that can tell, without waiting, whether a transaction is mined.
type txLookup interface {
	LookupTx(ctx context.Context, hash common.Hash) (txn.Status, error)
}

// settledBefore reports, for a requeued payment, whether the transaction it was last submitted
// with is mined with success after all, and then records it settled.
func (c *charge) settledBefore(ctx context.Context) (*x402.SettlementResponse, bool) {
	if c.prior == (common.Hash{}) {
		return nil, false
	}
	l, ok := c.e.Chain.(txLookup)
	if !ok {
		return nil, false
	}
	st, err := l.LookupTx(ctx, c.prior)
	if err != nil || st.Receipt == nil || st.Receipt.Status != types.ReceiptStatusSuccessful {
		return nil, false
	}
	if err := c.e.Ledger.MarkSettled(ctx, c.id, c.prior.Hex()); err != nil {
		c.e.log().Error("recording a settlement found for a requeued payment failed", "payment", c.id, "tx", c.prior, "err", err)
	}
	a := c.v.Payload.Authorization
	return &x402.SettlementResponse{Success: true, Payer: c.Payer(), Transaction: c.prior.Hex(), Network: c.network, Amount: a.Value.String()}, true
}

// requeueable reports whether a send failure leaves a queued payment to be sent again later
// rather than failed: the transfer certainly did not go out, for a reason of the gateway's own
// (the settler's gas, the nodes), not because it would revert. A request's payment is never
// requeued: its payer is waiting for the answer.
func (c *charge) requeueable(err error) bool {
	var rev *txn.RevertError
	return c.queued && errors.Is(err, txn.ErrNotSent) && !errors.As(err, &rev) || c.queued && errors.Is(err, txn.ErrSettlerUnfunded)
}

// checkStillValid refuses an authorization whose validBefore is less than the inclusion margin
// away, by the rule verification applied (exact.ExpiresWithin): with the default margin, a payment
// verified at an instant may also be sent at that instant, as the reference's settle, which
// verifies again, would send it.
func (c *charge) checkStillValid() error {
	now := time.Now
	if c.e.Now != nil {
		now = c.e.Now
	}
	validBefore := c.v.Payload.Authorization.ValidBefore
	if !exact.ExpiresWithin(validBefore, now(), c.e.InclusionMargin) {
		return nil
	}
	return x402.Failf(x402.ReasonExactValidBefore,
		"authorization expires at %s, too soon for a settlement to be mined; nothing was charged", validBefore)
}

// latestStoredValidBefore is the latest validBefore a payment record holds: the last second of
// year 9999, within what both stores' time columns take. An authorization valid longer (any
// uint256 is, to the token and to the reference) is recorded as valid until then, which for
// every use of the record (is it still minable? may it be pruned?) means the same: for ever.
var latestStoredValidBefore = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)

// storedValidBefore is validBefore, a unix time, as the record keeps it.
func storedValidBefore(validBefore *big.Int) time.Time {
	if !validBefore.IsInt64() || validBefore.Int64() > latestStoredValidBefore.Unix() {
		return latestStoredValidBefore
	}
	return time.Unix(validBefore.Int64(), 0)
}

// diagnose names why a transfer that verified could not be sent: the payer spent the nonce or the
// balance in the meantime, or something else went wrong.
func (c *charge) diagnose(ctx context.Context, err error) x402.Reason {
	var rev *txn.RevertError
	var simulated *settle.SimulatedRevert
	switch {
	case errors.As(err, &simulated) && simulated.InsufficientBalance():
		return x402.ReasonExactInsufficientBalance
	case errors.As(err, &simulated):
		rev = &txn.RevertError{Reason: simulated.Reason, Err: err}
	case !errors.As(err, &rev):
		return x402.ReasonExactFailedToExecute
	}
	a := c.v.Payload.Authorization
	if used, cerr := c.e.Chain.AuthorizationState(ctx, c.v.Token, a.From, a.Nonce); cerr == nil && used {
		return x402.ReasonExactNonceAlreadyUsed
	}
	if bal, cerr := c.e.Chain.BalanceOf(ctx, c.v.Token, a.From); cerr == nil && bal.Cmp(a.Value) < 0 {
		return x402.ReasonExactInsufficientBalance
	}
	if strings.Contains(rev.Reason, "expired") {
		return x402.ReasonExactValidBefore
	}
	return x402.ReasonExactTransactionSimFailed
}

// fail records a terminal failure. A payment that was never broadcast is released instead, so
// its record does not block the key; the chain itself refuses a spent nonce. A queued payment
// was served: it is never released, it failed.
func (c *charge) fail(ctx context.Context, reason x402.Reason) {
	var err error
	if !c.queued {
		err = c.e.Ledger.ReleasePayment(ctx, c.id, string(reason))
	}
	if c.queued || errors.Is(err, store.ErrConflict) {
		err = c.e.Ledger.MarkFailed(ctx, c.id, string(reason))
	}
	if err != nil {
		c.e.log().Error("recording a failed settlement failed", "payment", c.id, "reason", reason, "err", err)
	}
}

var _ paywall.OnChain = (*Method)(nil)
