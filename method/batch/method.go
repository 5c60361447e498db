package batchmethod

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// Store is the part of the store channels need.
type Store interface {
	CreateChannel(ctx context.Context, c *store.Channel) error
	GetChannel(ctx context.Context, id string) (*store.Channel, error)
	ChargeChannel(ctx context.Context, c store.ChannelCharge) error
	FinishChannelCharge(ctx context.Context, id string, f store.InFlightCharge) error
	ReleaseChannelCharge(ctx context.Context, id, inFlightID string) error
	HoldChannelRefund(ctx context.Context, h store.ChannelRefundHold) error
	ReleaseChannelRefund(ctx context.Context, id string, amount *big.Int) error
	SyncChannel(ctx context.Context, id string, s store.ChannelChainState) error
}

// Chain reads the escrow and submits deposits.
type Chain interface {
	// ChannelState reads channel id from the escrow contract at the latest block.
	ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error)
	// BalanceOf returns owner's token balance.
	BalanceOf(ctx context.Context, token, owner common.Address) (*big.Int, error)
	// Deposit submits the payer's signed deposit and waits until it is mined.
	Deposit(ctx context.Context, cfg batch.ChannelConfig, d batch.Deposit) (common.Hash, error)
}

// Method is batch-settlement as a paywall.Method.
type Method struct {
	Offer    batch.Offer
	Verifier *batch.Verifier
	Store    Store
	Chain    Chain
	Refunds  *Refunds // nil refuses refund requests
	Logger   *slog.Logger
	Now      func() time.Time // refund hold and in-flight expiry times; default time.Now
	// InFlightFor is how long a charge may stay in flight before it is given back as if its
	// request failed: longer than any request can take to be served (upstream timeouts plus the
	// charge timeout). Default DefaultInFlightFor.
	InFlightFor time.Duration

	views sync.Map // channel id → store.Channel: this process's last view, checked by every charge
}

// Requirements implements paywall.Method.
func (m *Method) Requirements(price *big.Int) x402.PaymentRequirements {
	return m.Offer.Requirements(price)
}

// Authorize implements paywall.Method.
func (m *Method) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, _ paywall.RequestInfo) (paywall.Charge, error) {
	if p.Accepted.Network != req.Network {
		return nil, x402.Failf(x402.ReasonBatchNetworkMismatch, "network %q is not %q", p.Accepted.Network, req.Network)
	}
	pl, err := batch.ParsePaymentPayload(p)
	if err != nil {
		return nil, err
	}
	price, ok := x402.ParseAmount(req.Amount)
	if !ok {
		return nil, fmt.Errorf("channels: requirement amount %q", req.Amount)
	}
	terms := m.Offer.Terms(price)
	switch pl.Type {
	case batch.TypeVoucher:
		return m.authorizeVoucher(ctx, req, terms, pl)
	case batch.TypeDeposit:
		return m.authorizeDeposit(ctx, req, terms, pl)
	case batch.TypeRefund:
		return m.authorizeRefund(ctx, req, terms, pl)
	default:
		return nil, x402.Failf(x402.ReasonBatchPayloadType, "payload type %q is not accepted on a paid request", pl.Type)
	}
}

// channel returns the record of channel id. A channel the gateway has never seen (a payer
// whose earlier requests went to another deployment, or whose record was lost) is read from the
// chain once, with the on-chain claimed total as the charged baseline.
func (m *Method) channel(ctx context.Context, id common.Hash, cfg batch.ChannelConfig) (*store.Channel, error) {
	ch, err := m.Store.GetChannel(ctx, id.Hex())
	if err == nil {
		return ch, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
	}
	st, err := m.Chain.ChannelState(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: read channel: %w", paywall.ErrUnavailable, err)
	}
	if st.Balance.Sign() == 0 {
		return nil, x402.Failf(x402.ReasonBatchChannelNotFound, "channel %s holds no deposit", id.Hex())
	}
	if err := m.create(ctx, id, cfg, st); err != nil {
		return nil, err
	}
	if ch, err = m.Store.GetChannel(ctx, id.Hex()); err != nil {
		return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
	}
	return ch, nil
}

func (m *Method) create(ctx context.Context, id common.Hash, cfg batch.ChannelConfig, st store.ChannelChainState) error {
	rec := &store.Channel{
		ID: id.Hex(), Network: m.Offer.Network,
		Payer: cfg.Payer.Hex(), PayerAuthorizer: cfg.PayerAuthorizer.Hex(), Receiver: cfg.Receiver.Hex(),
		ReceiverAuthorizer: cfg.ReceiverAuthorizer.Hex(), Token: cfg.Token.Hex(),
		WithdrawDelay: int64(cfg.WithdrawDelay), Salt: cfg.Salt.Hex(),
		Charged: st.TotalClaimed, SignedMax: st.TotalClaimed, Claimed: st.TotalClaimed,
		Balance: st.Balance, TotalClaimed: st.TotalClaimed, PendingWithdrawal: st.PendingWithdrawal,
		WithdrawRequestedAt: st.WithdrawRequestedAt, RefundNonce: st.RefundNonce, SyncedBlock: st.Block,
	}
	err := m.Store.CreateChannel(ctx, rec)
	if err != nil && !errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("%w: create channel: %w", paywall.ErrUnavailable, err)
	}
	return nil
}

// snapshot is what the verifier judges a payment on. Funds held for a refund in flight are not
// there to spend.
func snapshot(ch *store.Channel) batch.Snapshot {
	balance := ch.Balance
	if ch.RefundHold != nil && ch.RefundHold.Sign() > 0 {
		balance = new(big.Int).Sub(ch.Balance, ch.RefundHold)
	}
	return batch.Snapshot{
		ChargedCumulative: ch.Charged, Balance: balance, TotalClaimed: ch.TotalClaimed,
		PendingWithdrawal: ch.PendingWithdrawal, WithdrawRequestedAt: uint64(ch.WithdrawRequestedAt),
		RefundNonce: ch.RefundNonce, SignedMaxClaimable: ch.SignedMax, Signature: common.FromHex(ch.Signature),
	}
}

// correctable carries a corrective 402 offer for the paywall.
type correctable struct {
	err *batch.CumulativeMismatchError
}

func (c correctable) Error() string { return c.err.Error() }
func (c correctable) Unwrap() error { return c.err }
func (c correctable) Correct(offer x402.PaymentRequirements) x402.PaymentRequirements {
	return c.err.Corrective(offer)
}

// verifyError turns the verifier's answer into what the paywall expects.
func verifyError(err error) error {
	var mismatch *batch.CumulativeMismatchError
	if errors.As(err, &mismatch) {
		return correctable{err: mismatch}
	}
	if errors.Is(err, batch.ErrOnchainCheck) {
		return x402.Failf(x402.ReasonBatchVoucherSignature, "smart-wallet (EIP-1271) voucher signers are not supported; use an EOA payerAuthorizer")
	}
	return err
}

func (m *Method) authorizeVoucher(ctx context.Context, req x402.PaymentRequirements, terms batch.Terms, pl *batch.Payload) (paywall.Charge, error) {
	id, err := m.Verifier.CheckChannel(terms, pl)
	if err != nil {
		return nil, err
	}
	// The first try judges the voucher on this process's last view of the channel; the
	// compare-and-set catches any view that is out of date. Any failure is judged again on the
	// store's record before it is answered, so a stale view never refuses a good voucher.
	useCache := true
	for attempt := 0; attempt < 3; attempt++ {
		ch, cached := m.cached(id)
		if !useCache || !cached {
			if ch, err = m.channel(ctx, id, pl.ChannelConfig); err != nil {
				return nil, err
			}
			m.remember(ch)
		}
		fromCache := useCache && cached
		useCache = false
		v, err := m.Verifier.VerifyVoucher(terms, snapshot(ch), pl)
		if err != nil {
			if fromCache {
				continue
			}
			return nil, verifyError(err)
		}
		c, err := m.charge(ctx, req, ch, v, terms.Price)
		if errors.Is(err, store.ErrConflict) {
			continue // charged or synced concurrently: judge the voucher again on fresh state
		}
		return c, err
	}
	return nil, x402.Failf(x402.ReasonBatchChannelBusy, "channel %s is being charged by other requests", id.Hex())
}

// cached returns this process's last view of a channel.
func (m *Method) cached(id common.Hash) (*store.Channel, bool) {
	v, ok := m.views.Load(id)
	if !ok {
		return nil, false
	}
	ch := v.(store.Channel)
	return &ch, true
}

func (m *Method) remember(ch *store.Channel) { m.views.Store(common.HexToHash(ch.ID), *ch) }

func (m *Method) forget(id string) { m.views.Delete(common.HexToHash(id)) }

// charge applies the voucher with the store's compare-and-set. The expected charged total is the
// one the voucher was verified against (its amount less the price), not whatever ch holds: a
// caller that read the channel again after verifying (a deposit does) must not charge on top of
// a total the voucher was not checked against.
func (m *Method) charge(ctx context.Context, req x402.PaymentRequirements, ch *store.Channel, v *batch.Verified, price *big.Int) (*charge, error) {
	max := v.Payload.Voucher.MaxClaimableAmount
	base := new(big.Int).Sub(max, price)
	// Detached: a client hanging up must not turn a committed charge into an error that says
	// nothing was charged (the SQLite group commit is detached anyway; PostgreSQL is not).
	ctx, cancel := storeContext(ctx)
	defer cancel()
	// In flight until the request is answered: a claim or refund meanwhile must not take it.
	inFlight := &store.InFlightCharge{ID: newInFlightID(), Amount: price, Expires: m.now().Add(m.inFlightFor())}
	err := m.Store.ChargeChannel(ctx, store.ChannelCharge{
		ID: ch.ID, ExpectedCharged: base, ChainVersion: ch.ChainVersion,
		Charged: max, SignedMax: max, Signature: common.Bytes2Hex(v.Payload.Voucher.Signature), InFlight: inFlight,
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("%w: charge channel: %w", paywall.ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	failpoint.Hit(failpoint.ChannelCharged)
	after := *ch
	after.Charged, after.SignedMax, after.Signature = max, max, common.Bytes2Hex(v.Payload.Voucher.Signature)
	m.remember(&after)
	return &charge{m: m, network: req.Network, channel: after, inFlight: *inFlight, price: price, payer: v.Payer}, nil
}

// charge is a voucher charged in the store, in flight until Complete makes it final or Cancel
// gives it back.
type charge struct {
	m        *Method
	network  string
	channel  store.Channel
	inFlight store.InFlightCharge
	price    *big.Int
	payer    common.Address
	deposit  *depositResult
}

type depositResult struct {
	tx     common.Hash
	amount *big.Int
}

func (c *charge) Payer() string { return c.payer.Hex() }

// Complete makes the charge final; the response is released only once that is durable. A charge
// that expired meanwhile was given back, so the response must not be released.
func (c *charge) Complete(ctx context.Context) (*x402.SettlementResponse, error) {
	if err := c.m.Store.FinishChannelCharge(ctx, c.channel.ID, c.inFlight); err != nil {
		c.m.forget(c.channel.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, x402.Failf(x402.ReasonUnexpectedSettleError,
				"the request took longer than a charge may stay in flight; the charge was given back and nothing was charged")
		}
		return nil, fmt.Errorf("%w: finish channel charge: %w", paywall.ErrUnavailable, err)
	}
	failpoint.Hit(failpoint.ChannelFinished)
	state := snapshot(&c.channel).ChannelState(common.HexToHash(c.channel.ID))
	var r batch.SettlementResponse
	if c.deposit != nil {
		r = batch.DepositResponse(c.network, c.payer, c.deposit.tx, c.deposit.amount, state, c.price)
	} else {
		r = batch.VoucherResponse(c.network, c.payer, state, c.price)
	}
	out := r.X402()
	return &out, nil
}

// Cancel gives the charge back: its request was not served. One that expired is already back.
func (c *charge) Cancel(ctx context.Context, reason string) {
	c.m.forget(c.channel.ID)
	err := c.m.Store.ReleaseChannelCharge(ctx, c.channel.ID, c.inFlight.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// It stays in flight, so nobody claims it, and is given back when it expires.
		c.m.log().Error("giving back a channel charge failed; it is given back when it expires", "channel", c.channel.ID,
			"reason", reason, "err", err)
	}
}

// DefaultInFlightFor is how long a charge may stay in flight by default.
const DefaultInFlightFor = 10 * time.Minute

func (m *Method) inFlightFor() time.Duration {
	if m.InFlightFor <= 0 {
		return DefaultInFlightFor
	}
	return m.InFlightFor
}

// newInFlightID names an in-flight charge: random, so that replicas never collide.
func newInFlightID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// storeWriteTimeout bounds a store write detached from its request.
const storeWriteTimeout = 30 * time.Second

// storeContext detaches a store write from its request's cancellation, keeping its values.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
}

func (m *Method) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Method) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

var _ paywall.Method = (*Method)(nil)
