package account

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/core/types"
)

// ErrNonceTaken means another transaction used a settler transaction's nonce (another process
// with the same key, or an operator), so none of its variants can ever be mined.
var ErrNonceTaken = errors.New("account: the nonce was used by another transaction")

// maxFillsPerRepair bounds the gap-filling transfers one repair sends.
const maxFillsPerRepair = 64

// fillerGas is the gas of a plain ETH transfer.
const fillerGas = 21_000

// Repair runs repairLocked unless one ran less than half a RecheckEvery ago: every waiter asks
// for one, and one answers them all.
func (s *Sender) Repair(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Sub(s.lastRepair) < s.opts.RecheckEvery/2 {
		return nil
	}
	return s.repairLocked(ctx)
}

// repairLocked compares the allocator with the chain and makes every nonce the settler used land.
//
// The chain's nonces are read on one endpoint: latest (the next nonce a block will use) and
// pending (past every transaction of the account a node would mine in order). Flights below
// latest are done. Each nonce from pending up to the highest one the sender holds a transaction
// for is ours to make land: a transaction lost from the pools, or never delivered, is
// re-broadcast (the same signed bytes, or the one that was mined if the chain rewound past it);
// a nonce the sender holds nothing for is a gap and gets a 0-value transfer to the settler itself,
// so that the transactions above it can be mined. Above the highest held nonce the allocator is
// simply ahead of the chain (a rewind) and moves back. Finally, transactions waiting longer than
// ReplaceAfter are replaced with higher fees. The caller holds s.mu.
func (s *Sender) repairLocked(ctx context.Context) error {
	latest, pending, err := s.node.Nonces(ctx, s.from)
	if err != nil {
		return err
	}
	s.lastRepair = s.now()
	s.track.Lock()
	s.passedLocked(latest)
	if s.next < pending {
		s.next = pending // another sender of the key, or a first read
	}
	top := pending
	for n := pending; n < s.next; n++ {
		if s.flights[n] != nil || s.landed.byNonce[n] != nil {
			top = n + 1
		}
	}
	s.track.Unlock()

	var gapFees *fees
	fills := 0
	for n := pending; n < top; n++ {
		s.track.Lock()
		fl := s.heldLocked(n)
		s.track.Unlock()
		if fl != nil {
			s.rebroadcast(ctx, fl)
			continue
		}
		if fills == maxFillsPerRepair {
			return nil // the rest at the next repair; the allocator stays where it is
		}
		if gapFees == nil {
			f, err := s.currentFees(ctx)
			if err != nil {
				return err
			}
			gapFees = &f
		}
		if err := s.fill(ctx, n, *gapFees); err != nil {
			return err
		}
		fills++
	}
	if top < s.next {
		s.log.Warn("settler nonce was ahead of the chain (it rewound, or transactions were lost); re-synced",
			"settler", s.from, "was", s.next, "now", top)
		s.next = top
	}
	s.synced = true
	return s.replaceStale(ctx, latest)
}

// rebroadcast sends a held transaction again. Whatever the answer, the next repair sees where the
// account's nonce stands.
func (s *Sender) rebroadcast(ctx context.Context, fl *Flight) {
	tx := s.rebroadcastable(fl)
	if tx == nil {
		return
	}
	outcome, err := s.node.Broadcast(ctx, tx)
	if outcome == BroadcastSent {
		s.log.Info("re-broadcast a settler transaction no node had", "tx", tx.Hash(), "nonce", fl.nonce)
		return
	}
	s.log.Warn("re-broadcasting a settler transaction failed", "tx", tx.Hash(), "nonce", fl.nonce, "err", err)
}

// fill sends a 0-value transfer to the settler itself at nonce, which nothing holds.
func (s *Sender) fill(ctx context.Context, nonce uint64, f fees) error {
	call := txCall{to: s.from, gas: fillerGas, value: new(big.Int)}
	tx, err := s.sign(nonce, call, f)
	if err != nil {
		return err
	}
	fl := &Flight{nonce: nonce, call: call, filler: true}
	s.addVariant(fl, tx)
	outcome, err := s.node.Broadcast(ctx, tx)
	if outcome == BroadcastRefused || outcome == BroadcastNotDelivered {
		s.forget(fl)
		return fmt.Errorf("filling nonce gap %d: %w", nonce, err)
	}
	s.log.Warn("filled a settler nonce gap with a 0-value transfer to itself", "tx", tx.Hash(), "nonce", nonce)
	return nil
}

// replaceStale replaces the flights signed more than ReplaceAfter ago that a higher fee may help:
// the one the chain waits for (nonce latest), and any priced below today's fees.
func (s *Sender) replaceStale(ctx context.Context, latest uint64) error {
	now := s.now()
	s.track.Lock()
	var stale []*Flight
	for n, fl := range s.flights {
		if n >= latest && len(fl.txs) > 0 && now.Sub(fl.signedAt) >= s.opts.ReplaceAfter {
			stale = append(stale, fl)
		}
	}
	s.track.Unlock()
	if len(stale) == 0 {
		return nil
	}
	slices.SortFunc(stale, func(a, b *Flight) int { return int(a.nonce) - int(b.nonce) })
	fresh, err := s.currentFees(ctx)
	if err != nil {
		return err
	}
	for _, fl := range stale {
		if old := s.rebroadcastable(fl); fl.nonce == latest || old.GasFeeCap().Cmp(fresh.cap) < 0 {
			s.replace(ctx, fl, old, fresh)
		}
	}
	return nil
}

// replace signs fl's call again at its nonce with fees raised over old's, records the new hash
// through the write-ahead hook, and broadcasts it. A replacement no node takes is forgotten and
// the record pointed back at old. When the fee ceiling leaves no room for a raise, the
// transaction waits, reported once.
func (s *Sender) replace(ctx context.Context, fl *Flight, old *types.Transaction, fresh fees) {
	next, ok := bumped(feesOf(old), fresh, s.opts.MaxFeePerGas)
	if !ok {
		s.track.Lock()
		logged := fl.ceilingLogged
		fl.ceilingLogged = true
		s.track.Unlock()
		if !logged {
			s.log.Error("settler transaction not mined and its fees are at the configured ceiling; it waits, and later ones queue behind it",
				"tx", old.Hash(), "nonce", fl.nonce, "fee_cap", old.GasFeeCap(), "max_fee_per_gas", s.opts.MaxFeePerGas)
		}
		return
	}
	tx, err := s.sign(fl.nonce, fl.call, next)
	if err != nil {
		s.log.Error("signing a replacement failed", "nonce", fl.nonce, "err", err)
		return
	}
	if fl.onSigned != nil {
		if err := fl.onSigned(tx.Hash()); err != nil {
			s.log.Warn("not replacing a slow transaction: its write-ahead record failed", "tx", old.Hash(), "err", err)
			return
		}
	}
	s.addVariant(fl, tx)
	outcome, err := s.node.Broadcast(ctx, tx)
	switch outcome {
	case BroadcastSent, BroadcastUnknown:
		s.log.Info("replaced a settler transaction not mined in time", "old", old.Hash(), "new", tx.Hash(),
			"nonce", fl.nonce, "fee_cap", next.cap, "tip", next.tip, "broadcast_err", err)
		return
	}
	s.dropVariant(fl, tx)
	if fl.onSigned != nil {
		if err := fl.onSigned(old.Hash()); err != nil {
			s.log.Warn("pointing a record back at the transaction a refused replacement was for failed", "tx", old.Hash(), "err", err)
		}
	}
	s.log.Warn("a replacement was refused; the transaction it was for still stands", "old", old.Hash(), "new", tx.Hash(), "err", err)
}
