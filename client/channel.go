package client

import (
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// ChannelStore keeps a payer's channel records: channelstore.Dir on disk, channelstore.Memory in
// tests.
type ChannelStore interface {
	// Load returns the record of channel id, or channelstore.ErrNotFound.
	Load(id common.Hash) (*channelstore.Record, error)
	Save(r *channelstore.Record) error
}

// Channel payer failures callers may test for.
var (
	// ErrDepositNotAllowed means a payment needs a deposit (a new channel or a top-up) that the
	// payer's MaxDeposit or DepositBudget does not allow.
	ErrDepositNotAllowed = errors.New("client: the channel needs a deposit that is not allowed")
	// ErrUnverifiedChannelState means a server's claim about a channel's charged total is not
	// backed by a voucher this payer signed, so it was not adopted.
	ErrUnverifiedChannelState = errors.New("client: channel state not backed by a voucher this payer signed")
)

// ChannelPayer pays x402 "batch-settlement" offers through escrow channels, one channel per
// server terms (payTo, token, receiver authorizer, withdraw delay) and Signer salt. The first
// payment deposits into the channel together with the first voucher; every later one is a
// cumulative voucher for the server's charged total plus the price, with no transaction. When
// the channel's balance would be exceeded it tops up with another deposit.
//
// Channel state lives in Store and is updated from every PAYMENT-RESPONSE, so a new payer on the
// same store continues where the last one stopped. A corrective 402 (the server's charged total
// differs from the payer's) is adopted only when the server proves it with a voucher this payer
// signed; the transport then retries once. Payments through one channel are serialised: a
// channel has one request in flight at a time.
//
// Register it on a Transport (it implements Payer, Preferrer and Settler). The transport's
// MaxPerRequest and Budget bound the price of each request; deposits, which stay the payer's
// money until spent, are bounded separately by MaxDeposit and DepositBudget.
type ChannelPayer struct {
	Signer *batch.Signer
	Store  ChannelStore
	// Deposit is how much to deposit when a channel is opened or topped up; the server's
	// announced minDeposit, the price and what the payment needs raise it. Nil leaves it to them.
	Deposit *big.Int
	// MaxDeposit caps one deposit. Nil means the payer never deposits and pays only through
	// channels that already hold funds.
	MaxDeposit *big.Int
	// DepositBudget, if set, caps the total deposited.
	DepositBudget *Budget
	Now           func() time.Time
	Logger        *slog.Logger

	mu       sync.Mutex
	busy     map[common.Hash]chan struct{}
	inflight map[*x402.PaymentPayload]*channelAttempt
}

// channelRef identifies the channel a requirement is paid through.
type channelRef struct {
	id        common.Hash
	config    batch.ChannelConfig
	separator common.Hash
	network   string
}

// channelAttempt is a payload on its way to the server.
type channelAttempt struct {
	ref      channelRef
	req      x402.PaymentRequirements
	base     *big.Int // the charged total the voucher builds on
	max      *big.Int // the voucher's cumulative amount: base + price
	deposit  *big.Int // nil for a voucher alone
	resource string
}

// Scheme implements Payer.
func (p *ChannelPayer) Scheme() string { return batch.Scheme }

// Channel returns the id of the channel that pays req and its record (nil when the payer has
// none).
func (p *ChannelPayer) Channel(req x402.PaymentRequirements) (common.Hash, *channelstore.Record, error) {
	ref, err := p.channelOf(req)
	if err != nil {
		return common.Hash{}, nil, err
	}
	rec, err := p.load(ref.id)
	return ref.id, rec, err
}

// Prefer implements Preferrer: the payer wants batch-settlement used whenever it has a channel
// that can pay req or may open or top one up; otherwise it cannot pay req.
func (p *ChannelPayer) Prefer(req x402.PaymentRequirements) (bool, error) {
	ref, price, err := p.parse(req)
	if err != nil {
		return false, err
	}
	rec, err := p.load(ref.id)
	if err != nil {
		return false, err
	}
	if _, err := p.depositNeeded(req, rec, price); err != nil {
		return false, err
	}
	return true, nil
}

// CreatePayload implements Payer: a voucher for the charged total plus the price, or a deposit
// with that voucher when the channel is new or short of funds. The channel stays reserved for
// this payment until the transport reports its outcome through Settled.
func (p *ChannelPayer) CreatePayload(req x402.PaymentRequirements, resource *x402.ResourceInfo) (_ *x402.PaymentPayload, err error) {
	ref, price, err := p.parse(req)
	if err != nil {
		return nil, err
	}
	p.lock(ref.id)
	defer func() {
		if err != nil {
			p.unlock(ref.id)
		}
	}()
	rec, err := p.load(ref.id)
	if err != nil {
		return nil, err
	}
	deposit, err := p.depositNeeded(req, rec, price)
	if err != nil {
		return nil, err
	}
	a := &channelAttempt{ref: ref, req: req, base: new(big.Int), deposit: deposit}
	if rec != nil {
		a.base.Set(orZero(rec.Charged))
	}
	a.max = new(big.Int).Add(a.base, price)
	if resource != nil {
		a.resource = resource.URL
	}
	var pl *batch.Payload
	if deposit == nil {
		pl, err = p.Signer.VoucherPayload(req, a.max)
	} else {
		if p.DepositBudget != nil {
			if err := p.DepositBudget.Reserve(deposit); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrDepositNotAllowed, err)
			}
		}
		if pl, err = p.Signer.DepositPayload(req, deposit, a.max); err != nil {
			p.refundDeposit(a)
		}
	}
	if err != nil {
		return nil, err
	}
	pp, err := batch.PaymentPayload(req, resource, pl)
	if err != nil {
		p.refundDeposit(a)
		return nil, err
	}
	p.mu.Lock()
	if p.inflight == nil {
		p.inflight = map[*x402.PaymentPayload]*channelAttempt{}
	}
	p.inflight[pp] = a
	p.mu.Unlock()
	return pp, nil
}

// depositNeeded returns nil when the channel can pay price by voucher alone, else the deposit
// to make, or ErrDepositNotAllowed. A deposit whose outcome never came back counts as made: the
// voucher that relies on it is refused if it was not, and the payer then deposits. A pending
// withdrawal counts as gone, as the server counts it.
func (p *ChannelPayer) depositNeeded(req x402.PaymentRequirements, rec *channelstore.Record, price *big.Int) (*big.Int, error) {
	charged, balance := new(big.Int), new(big.Int)
	if rec != nil {
		charged.Set(orZero(rec.Charged))
		balance.Add(orZero(rec.Balance), orZero(rec.Unconfirmed))
		balance.Sub(balance, orZero(rec.PendingWithdrawal))
	}
	next := new(big.Int).Add(charged, price)
	if rec != nil && next.Cmp(balance) <= 0 {
		return nil, nil
	}
	needed := new(big.Int).Sub(next, balance)
	if p.MaxDeposit == nil {
		if rec == nil {
			return nil, fmt.Errorf("%w: no channel with this server yet, and no deposit cap (MaxDeposit) is set", ErrDepositNotAllowed)
		}
		return nil, fmt.Errorf("%w: channel %s has %s left for a price of %s%s, and no deposit cap (MaxDeposit) is set",
			ErrDepositNotAllowed, rec.ChannelID.Hex(), rec.Remaining(), price, pendingNote(rec))
	}
	floor := maxOf(needed, price)
	if e, err := batch.ParseRequirementsExtra(req.Extra); err == nil && e.MinDeposit != nil {
		floor = maxOf(floor, e.MinDeposit)
	}
	if floor.Cmp(p.MaxDeposit) > 0 {
		return nil, fmt.Errorf("%w: the channel needs a deposit of at least %s, above the cap of %s", ErrDepositNotAllowed, floor, p.MaxDeposit)
	}
	deposit := floor
	if p.Deposit != nil {
		deposit = maxOf(floor, p.Deposit)
	}
	if deposit.Cmp(p.MaxDeposit) > 0 {
		deposit = new(big.Int).Set(p.MaxDeposit)
	}
	if p.DepositBudget != nil && deposit.Cmp(p.DepositBudget.Remaining()) > 0 {
		return nil, fmt.Errorf("%w: a deposit of %s is above what the deposit budget has left (%s)", ErrDepositNotAllowed, deposit, p.DepositBudget.Remaining())
	}
	return deposit, nil
}

func (p *ChannelPayer) parse(req x402.PaymentRequirements) (channelRef, *big.Int, error) {
	ref, err := p.channelOf(req)
	if err != nil {
		return channelRef{}, nil, err
	}
	price, ok := x402.ParseAmount(req.Amount)
	if !ok || price.Sign() <= 0 {
		return channelRef{}, nil, fmt.Errorf("client: batch-settlement price %q is not a positive integer", req.Amount)
	}
	return ref, price, nil
}

func (p *ChannelPayer) channelOf(req x402.PaymentRequirements) (channelRef, error) {
	if p.Signer == nil || p.Signer.Key == nil || p.Store == nil {
		return channelRef{}, errors.New("client: ChannelPayer needs a Signer with a key and a Store")
	}
	cfg, err := p.Signer.ChannelConfig(req)
	if err != nil {
		return channelRef{}, err
	}
	chainID, err := evmsig.ChainIDFromNetwork(req.Network)
	if err != nil {
		return channelRef{}, fmt.Errorf("client: %w", err)
	}
	sep := batch.SettlementDomain(chainID).Separator()
	return channelRef{id: cfg.ChannelID(sep), config: cfg, separator: sep, network: req.Network}, nil
}

// load returns the record of id, or nil when there is none.
func (p *ChannelPayer) load(id common.Hash) (*channelstore.Record, error) {
	rec, err := p.Store.Load(id)
	if errors.Is(err, channelstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: channel state: %w", err)
	}
	return rec, nil
}

// loadOrNew returns the record of ref's channel, or a fresh one.
func (p *ChannelPayer) loadOrNew(ref channelRef) (*channelstore.Record, error) {
	rec, err := p.load(ref.id)
	if err != nil || rec != nil {
		return rec, err
	}
	return &channelstore.Record{
		ChannelID: ref.id, Network: ref.network, Config: ref.config,
		Deposited: new(big.Int), Balance: new(big.Int), TotalClaimed: new(big.Int), Charged: new(big.Int),
		SignedMax: new(big.Int), Refunded: new(big.Int),
	}, nil
}

func (p *ChannelPayer) save(rec *channelstore.Record) error {
	rec.UpdatedAt = p.now()
	if err := p.Store.Save(rec); err != nil {
		p.log().Error("saving channel state failed", "channel", rec.ChannelID.Hex(), "err", err)
		return fmt.Errorf("client: save channel state: %w", err)
	}
	return nil
}

// lock reserves channel id for one payment; unlock releases it.
func (p *ChannelPayer) lock(id common.Hash) {
	p.mu.Lock()
	if p.busy == nil {
		p.busy = map[common.Hash]chan struct{}{}
	}
	sem, ok := p.busy[id]
	if !ok {
		sem = make(chan struct{}, 1)
		p.busy[id] = sem
	}
	p.mu.Unlock()
	sem <- struct{}{}
}

func (p *ChannelPayer) unlock(id common.Hash) {
	p.mu.Lock()
	sem := p.busy[id]
	p.mu.Unlock()
	<-sem
}

func (p *ChannelPayer) refundDeposit(a *channelAttempt) {
	if p.DepositBudget != nil && a.deposit != nil {
		p.DepositBudget.Refund(a.deposit)
	}
}

func (p *ChannelPayer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *ChannelPayer) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// pendingNote mentions rec's pending withdrawal in an error, if there is one.
func pendingNote(rec *channelstore.Record) string {
	if !rec.WithdrawalPending() {
		return ""
	}
	return fmt.Sprintf(" (a withdrawal of %s is pending)", rec.PendingWithdrawal)
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

func maxOf(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}

var (
	_ Payer     = (*ChannelPayer)(nil)
	_ Preferrer = (*ChannelPayer)(nil)
	_ Settler   = (*ChannelPayer)(nil)
)
