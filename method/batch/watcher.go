package batchmethod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/store"
)

// Event is an escrow event about one channel.
type Event struct {
	ChannelID common.Hash
	Name      string // e.g. Deposited, Claimed, WithdrawInitiated
	Block     uint64
}

// WatchStore is the part of the store the watcher needs.
type WatchStore interface {
	GetChannel(ctx context.Context, id string) (*store.Channel, error)
	SyncChannel(ctx context.Context, id string, s store.ChannelChainState) error
	ListChannels(ctx context.Context, f store.ChannelFilter) ([]store.Channel, error)
}

// WatchChain follows the escrow.
type WatchChain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	ChannelEvents(ctx context.Context, from, to uint64) ([]Event, error)
	ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error)
}

// Watcher mirrors the on-chain state of the gateway's channels into the store, so that the
// request path never reads the chain: deposits made elsewhere, claims, refunds and above all
// withdrawals, which must stop new spending at once and be answered by a claim before their
// delay runs out.
type Watcher struct {
	Store   WatchStore
	Chain   WatchChain
	Network string
	// Claim, if set, runs when a payer starts a withdrawal, so that charged vouchers are claimed
	// before the withdrawal can be finalized.
	Claim  func(ctx context.Context) error
	Logger *slog.Logger

	mu      sync.Mutex // one round at a time
	next    uint64     // first block not yet read
	started bool       // Start succeeded: every known channel was refreshed once
}

// Start refreshes every known channel from the chain (covering events missed while the gateway
// was down) and positions the watcher at the current head. When a refresh fails the watcher stays
// unstarted, and the next RunOnce starts it again: a missed withdrawal must not go unseen.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.start(ctx)
}

func (w *Watcher) start(ctx context.Context) error {
	head, err := w.Chain.BlockNumber(ctx)
	if err != nil {
		return err
	}
	var failed []error
	after := ""
	for {
		page, err := w.Store.ListChannels(ctx, store.ChannelFilter{Network: w.Network, ByID: true, AfterID: after, Limit: store.MaxListLimit})
		if err != nil {
			return err
		}
		for _, ch := range page {
			if err := w.refresh(ctx, common.HexToHash(ch.ID)); err != nil {
				failed = append(failed, err)
			}
		}
		if len(page) < store.MaxListLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(failed) > 0 {
		return fmt.Errorf("refreshing %d channels failed: %w", len(failed), errors.Join(failed...))
	}
	w.next, w.started = head+1, true
	return nil
}

// RunOnce reads the events since the last round and refreshes the channels they touch. The
// round's blocks count as read only when every refresh succeeded; otherwise the next round reads
// them again (a sync never goes back to older state, so reading twice is harmless).
func (w *Watcher) RunOnce(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return w.start(ctx)
	}
	head, err := w.Chain.BlockNumber(ctx)
	if err != nil || head < w.next {
		return err
	}
	events, err := w.Chain.ChannelEvents(ctx, w.next, head)
	if err != nil {
		return err
	}
	touched := map[common.Hash]bool{}
	withdrawal := false
	for _, ev := range events {
		if !touched[ev.ChannelID] {
			if _, err := w.Store.GetChannel(ctx, ev.ChannelID.Hex()); errors.Is(err, store.ErrNotFound) {
				continue // not one of ours
			}
		}
		touched[ev.ChannelID] = true
		if ev.Name == "WithdrawInitiated" {
			withdrawal = true
			w.log().Info("payer started a withdrawal", "channel", ev.ChannelID, "block", ev.Block)
		}
	}
	var failed []error
	for id := range touched {
		if err := w.refresh(ctx, id); err != nil {
			failed = append(failed, err)
		}
	}
	if withdrawal && w.Claim != nil {
		if err := w.Claim(ctx); err != nil {
			w.log().Error("claiming before a withdrawal failed", "err", err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("refreshing %d channels failed; blocks %d-%d will be read again: %w", len(failed), w.next, head, errors.Join(failed...))
	}
	w.next = head + 1
	return nil
}

func (w *Watcher) refresh(ctx context.Context, id common.Hash) error {
	st, err := w.Chain.ChannelState(ctx, id)
	if err == nil {
		err = w.Store.SyncChannel(ctx, id.Hex(), st)
	}
	if err != nil {
		return fmt.Errorf("refresh channel %s: %w", id.Hex(), err)
	}
	return nil
}

// Run follows the chain every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	for {
		if err := w.RunOnce(ctx); err != nil {
			w.log().Warn("watching the escrow failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (w *Watcher) log() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}
