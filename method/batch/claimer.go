package batchmethod

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/store"
)

// ClaimStore is the part of the store the claimer needs.
type ClaimStore interface {
	ListChannels(ctx context.Context, f store.ChannelFilter) ([]store.Channel, error)
	MarkChannelClaimed(ctx context.Context, id string, from, to *big.Int) error
	SyncChannel(ctx context.Context, id string, s store.ChannelChainState) error
	ReleaseExpiredCharges(ctx context.Context, now time.Time) (int, error)
}

// ClaimChain is what the claimer needs of the chain: sending its claim transactions through the
// settlement engine, and reading the channels they leave.
type ClaimChain interface {
	settle.TxChain
	ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error)
}

// ClaimLeases lets one replica at a time run claim rounds (store.LeaseStore).
type ClaimLeases interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Claimer turns charged vouchers into the receiver's tokens: one transaction claims every
// channel with unclaimed charges (up to MaxBatch; the rest in later rounds, withdrawing payers
// first, the others in turn) and sweeps them to the receiver.
type Claimer struct {
	Store   ClaimStore
	Chain   ClaimChain
	Network string
	Token   common.Address
	// Receiver is payTo; Authorizer signs the claim batch (the channels' receiver authorizer).
	Receiver   common.Address
	Authorizer *ecdsa.PrivateKey
	Verifier   *batch.Verifier // for the settlement domain separator
	// MinValue skips a round whose unclaimed total is below it, unless a withdrawal is pending.
	MinValue *big.Int
	MaxBatch int // default 50
	Logger   *slog.Logger
	Now      func() time.Time // in-flight expiry; default time.Now
	// Leases, when set, make a round run only on the replica holding the claim lease: replicas
	// sharing a database would otherwise claim the same vouchers in rival transactions.
	Leases ClaimLeases
	// Holder names this replica to Leases; default a random name.
	Holder string
	// RoundTimeout bounds a round, its claim transaction included (default 5 min): a
	// transaction that is not mined by then is left to the next round, which claims again
	// (claiming what is already claimed changes nothing on chain), so a stuck transaction never
	// holds up later rounds.
	RoundTimeout time.Duration

	holderOnce sync.Once
	round      sync.Mutex // one round at a time: the schedule and a withdrawal may both ask for one
	cursor     string     // the last channel a round picked without urgency: the next round goes on after it
}

// candidate is a channel with something to claim, and its claim row.
type candidate struct {
	channel store.Channel
	claim   batch.VoucherClaim
}

// claimPage is how many channels one store query reads while looking for claims.
const claimPage = 500

// claimable reads every channel with unclaimed charges, in id order, and returns those a claim
// can advance. Channels that cannot advance (charged beyond a balance already claimed, or a
// broken record) are left out here rather than filling a batch round after round.
func (c *Claimer) claimable(ctx context.Context) ([]candidate, error) {
	var out []candidate
	after := ""
	for {
		page, err := c.Store.ListChannels(ctx, store.ChannelFilter{Network: c.Network, Receiver: c.Receiver.Hex(),
			Unclaimed: true, ByID: true, AfterID: after, Limit: claimPage})
		if err != nil {
			return nil, err
		}
		for _, ch := range page {
			c.recordLanded(ctx, &ch)
			if cand, ok := c.candidate(ch); ok {
				out = append(out, cand)
			}
		}
		if len(page) < claimPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// recordLanded records a claim the chain shows but the store does not: a round that ended (a
// crash, a deadline) after its transaction was sent and before it recorded the claim. Only
// what is final is recorded; the chain cannot hold more, since claims take only final charges.
func (c *Claimer) recordLanded(ctx context.Context, ch *store.Channel) {
	if ch.TotalClaimed == nil || ch.TotalClaimed.Cmp(ch.Claimed) <= 0 {
		return
	}
	to := ch.TotalClaimed
	if final := ch.Final(); to.Cmp(final) > 0 {
		c.log().Error("the escrow shows more claimed than this gateway charged for answered requests", "channel", ch.ID,
			"on_chain", ch.TotalClaimed, "final", final)
		to = final
	}
	if to.Cmp(ch.Claimed) <= 0 {
		return
	}
	if err := c.Store.MarkChannelClaimed(ctx, ch.ID, ch.Claimed, to); err != nil {
		c.log().Warn("recording a claim found on chain failed", "channel", ch.ID, "err", err)
		return
	}
	c.log().Info("recorded a claim found on chain", "channel", ch.ID, "claimed", to)
	ch.Claimed = new(big.Int).Set(to)
}

func (c *Claimer) candidate(ch store.Channel) (candidate, bool) {
	// Only final charges are claimed: a request still being served may yet fail, and what is
	// claimed on chain cannot be given back.
	final := ch.Final()
	if final.Cmp(ch.Claimed) <= 0 || final.Cmp(ch.SignedMax) > 0 {
		return candidate{}, false
	}
	cfg, err := channelConfig(ch)
	if err != nil {
		c.log().Error("channel record is unusable for a claim", "channel", ch.ID, "err", err)
		return candidate{}, false
	}
	// The escrow refuses a claim above the channel's balance, and one refused row would sink
	// the whole batch round after round: claim what the balance still covers.
	target := final
	if ch.Balance != nil && target.Cmp(ch.Balance) > 0 {
		if ch.Balance.Cmp(ch.Claimed) > 0 {
			c.log().Error("channel charged beyond its balance; claiming what it holds", "channel", ch.ID, "charged", final, "balance", ch.Balance)
		}
		target = ch.Balance
	}
	if target.Cmp(ch.Claimed) <= 0 {
		return candidate{}, false
	}
	return candidate{channel: ch, claim: batch.VoucherClaim{Channel: cfg, MaxClaimableAmount: ch.SignedMax,
		Signature: common.FromHex(ch.Signature), TotalClaimed: target}}, true
}

// pick chooses a round's batch from candidates in id order: first every channel whose payer is
// withdrawing (its charges must land before the withdrawal can finalize), then the others in
// turn, starting after the last one the previous round took, so busy channels cannot keep the
// rest waiting when there are more than a batch. It returns the cursor to keep once the batch is
// claimed.
func (c *Claimer) pick(candidates []candidate, maxBatch int) (_ []candidate, cursor string) {
	var out, rest []candidate
	for _, cand := range candidates {
		if cand.channel.WithdrawRequestedAt != 0 && len(out) < maxBatch {
			out = append(out, cand)
		} else {
			rest = append(rest, cand)
		}
	}
	start := 0
	for start < len(rest) && rest[start].channel.ID <= c.cursor {
		start++
	}
	cursor = c.cursor
	for i := 0; i < len(rest) && len(out) < maxBatch; i++ {
		cand := rest[(start+i)%len(rest)]
		out = append(out, cand)
		cursor = cand.channel.ID
	}
	return out, cursor
}

// ClaimResult reports one claim round.
type ClaimResult struct {
	Tx       common.Hash
	Channels int
	Amount   *big.Int
	Skipped  bool // another replica holds the claim lease
}

// DefaultClaimRoundTimeout bounds a claim round by default.
const DefaultClaimRoundTimeout = 5 * time.Minute

// claimLeaseFor is how long the claim lease lasts unless renewed: a replica that dies in a
// round holds the other replicas' rounds up this long at most.
const claimLeaseFor = 15 * time.Second

// holdLease takes the claim lease for a round and keeps renewing it until release is called,
// which gives it up. A nil release means another replica holds it.
func (c *Claimer) holdLease(ctx context.Context) (release func(), err error) {
	name, holder := "channel-claims/"+c.Network+"/"+strings.ToLower(c.Receiver.Hex()), c.holder()
	ok, err := c.Leases.AcquireLease(ctx, name, holder, claimLeaseFor)
	if err != nil {
		return nil, fmt.Errorf("claim lease: %w", err)
	}
	if !ok {
		return nil, nil
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(claimLeaseFor / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// A renewal that fails leaves the round running: a rival round would only claim
				// again what this one claims, which changes nothing on chain.
				if ok, err := c.Leases.AcquireLease(context.WithoutCancel(ctx), name, holder, claimLeaseFor); err != nil || !ok {
					c.log().Warn("renewing the claim lease failed", "held", ok, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		if err := c.Leases.ReleaseLease(context.WithoutCancel(ctx), name, holder); err != nil {
			c.log().Warn("releasing the claim lease failed; it lapses on its own", "err", err)
		}
	}, nil
}

func (c *Claimer) holder() string {
	c.holderOnce.Do(func() {
		if c.Holder == "" {
			var b [8]byte
			_, _ = rand.Read(b[:])
			c.Holder = "claimer-" + hex.EncodeToString(b[:])
		}
	})
	return c.Holder
}

// RunOnce claims what is unclaimed. It returns a zero result when there is nothing (or too
// little) to claim, or when another replica holds the claim lease (Skipped).
func (c *Claimer) RunOnce(ctx context.Context) (ClaimResult, error) {
	c.round.Lock()
	defer c.round.Unlock()
	timeout := c.RoundTimeout
	if timeout <= 0 {
		timeout = DefaultClaimRoundTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.Leases != nil {
		release, err := c.holdLease(ctx)
		if err != nil {
			return ClaimResult{}, err
		}
		if release == nil {
			c.log().Debug("another replica is claiming; skipping this round")
			return ClaimResult{Amount: new(big.Int), Skipped: true}, nil
		}
		defer release()
	}
	maxBatch := c.MaxBatch
	if maxBatch <= 0 {
		maxBatch = 50
	}
	// Charges left in flight by a process that died are given back first: their requests were
	// never answered, and until then they keep that part of a channel from being claimed.
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if n, err := c.Store.ReleaseExpiredCharges(ctx, now()); err != nil {
		c.log().Warn("giving back expired in-flight charges failed", "err", err)
	} else if n > 0 {
		c.log().Warn("gave back charges whose requests were never answered", "count", n)
	}
	candidates, err := c.claimable(ctx)
	if err != nil {
		return ClaimResult{}, err
	}
	var claims []batch.VoucherClaim
	var picked []store.Channel
	total, urgent := new(big.Int), false
	batchOf, cursor := c.pick(candidates, maxBatch)
	for _, cand := range batchOf {
		claims = append(claims, cand.claim)
		picked = append(picked, cand.channel)
		total.Add(total, new(big.Int).Sub(cand.claim.TotalClaimed, cand.channel.Claimed))
		urgent = urgent || cand.channel.WithdrawRequestedAt != 0
	}
	if len(claims) == 0 || (!urgent && c.MinValue != nil && total.Cmp(c.MinValue) < 0) {
		return ClaimResult{Amount: new(big.Int)}, nil
	}
	digest := batch.ClaimBatchOf(c.Verifier.Separator(), claims).Digest(c.Verifier.Separator())
	sig, err := evmsig.SignDigest(c.Authorizer, digest)
	if err != nil {
		return ClaimResult{}, err
	}
	data, err := claimAndSettleData(claims, sig, c.Receiver, c.Token)
	if err != nil {
		return ClaimResult{}, err
	}
	sent := settle.SendAndWait(ctx, c.Chain, settle.Call{To: escrow.BatchSettlementAddress, Data: data,
		UnknownWait: settle.DefaultUnknownWait, Logger: c.log()})
	if sent.Err != nil {
		return ClaimResult{}, fmt.Errorf("claim %d channels: %w", len(claims), sent.Err)
	}
	tx := sent.Tx
	failpoint.Hit(failpoint.ClaimSent)
	for i, ch := range picked {
		if err := c.Store.MarkChannelClaimed(ctx, ch.ID, ch.Claimed, claims[i].TotalClaimed); err != nil && !errors.Is(err, store.ErrConflict) {
			c.log().Error("recording a claim failed", "channel", ch.ID, "tx", tx, "err", err)
		}
		if st, err := c.Chain.ChannelState(ctx, common.HexToHash(ch.ID)); err == nil {
			_ = c.Store.SyncChannel(ctx, ch.ID, st)
		}
	}
	c.cursor = cursor
	c.log().Info("claimed channel charges", "channels", len(claims), "amount", total, "tx", tx)
	return ClaimResult{Tx: tx, Channels: len(claims), Amount: total}, nil
}

// Run claims every interval until ctx ends.
func (c *Claimer) Run(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if _, err := c.RunOnce(ctx); err != nil {
			c.log().Warn("claim round failed", "err", err)
		}
	}
}

func channelConfig(ch store.Channel) (batch.ChannelConfig, error) {
	for _, a := range []string{ch.Payer, ch.PayerAuthorizer, ch.Receiver, ch.ReceiverAuthorizer, ch.Token} {
		if !common.IsHexAddress(a) {
			return batch.ChannelConfig{}, fmt.Errorf("bad address %q", a)
		}
	}
	return batch.ChannelConfig{
		Payer: common.HexToAddress(ch.Payer), PayerAuthorizer: common.HexToAddress(ch.PayerAuthorizer),
		Receiver: common.HexToAddress(ch.Receiver), ReceiverAuthorizer: common.HexToAddress(ch.ReceiverAuthorizer),
		Token: common.HexToAddress(ch.Token), WithdrawDelay: uint64(ch.WithdrawDelay), Salt: common.HexToHash(ch.Salt),
	}, nil
}

func (c *Claimer) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
