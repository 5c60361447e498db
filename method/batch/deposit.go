package batchmethod

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// authorizeDeposit verifies a deposit locally, checks the payer can fund it, submits it and waits
// for it to be mined, records the channel's new on-chain state, then charges the voucher that
// came with it.
func (m *Method) authorizeDeposit(ctx context.Context, req x402.PaymentRequirements, terms batch.Terms, pl *batch.Payload) (paywall.Charge, error) {
	id, err := m.Verifier.CheckChannel(terms, pl)
	if err != nil {
		return nil, err
	}
	before, err := m.Chain.ChannelState(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: read channel: %w", paywall.ErrUnavailable, err)
	}
	ch, err := m.Store.GetChannel(ctx, id.Hex())
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := m.create(ctx, id, pl.ChannelConfig, before); err != nil {
			return nil, err
		}
		if ch, err = m.Store.GetChannel(ctx, id.Hex()); err != nil {
			return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
		}
	case err != nil:
		return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
	}
	snap := snapshot(ch)
	snap.Balance, snap.TotalClaimed, snap.PendingWithdrawal = before.Balance, before.TotalClaimed, before.PendingWithdrawal
	v, err := m.Verifier.VerifyDeposit(terms, snap, pl)
	if err != nil {
		return nil, verifyError(err)
	}
	amount := pl.Deposit.Amount
	funds, err := m.Chain.BalanceOf(ctx, pl.ChannelConfig.Token, pl.ChannelConfig.Payer)
	if err != nil {
		return nil, fmt.Errorf("%w: payer balance: %w", paywall.ErrUnavailable, err)
	}
	if funds.Cmp(amount) < 0 {
		return nil, x402.Failf(x402.ReasonBatchInsufficientBalance, "payer balance %s is below the deposit %s", funds, amount)
	}
	tx, err := m.Chain.Deposit(ctx, pl.ChannelConfig, *pl.Deposit)
	if err != nil {
		return nil, x402.Fail(x402.ReasonBatchDepositTransactionFailed, "the deposit could not be made", err)
	}
	after, err := m.Chain.ChannelState(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: read channel after deposit %s: %w", paywall.ErrUnavailable, tx.Hex(), err)
	}
	if err := m.Store.SyncChannel(ctx, id.Hex(), after); err != nil {
		return nil, fmt.Errorf("%w: record deposit: %w", paywall.ErrUnavailable, err)
	}
	// The watcher records the deposit's own event too, and may do so between this request's
	// record and its charge. Only when nothing else moved (no charge, refund or withdrawal) is
	// the voucher charged on the fresh record: the payer's money is in the escrow, and refusing
	// the request as busy would make it pay again.
	var c *charge
	for attempt := 0; ; attempt++ {
		if ch, err = m.Store.GetChannel(ctx, id.Hex()); err != nil {
			return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
		}
		if attempt > 0 && !onlySynced(ch, v, terms.Price, after) {
			break
		}
		if c, err = m.charge(ctx, req, ch, v, terms.Price); err == nil || !errors.Is(err, store.ErrConflict) || attempt == 2 {
			break
		}
	}
	switch {
	case c == nil && (err == nil || errors.Is(err, store.ErrConflict)):
		return nil, x402.Failf(x402.ReasonBatchChannelBusy, "channel %s changed while the deposit was made; retry with a voucher", id.Hex())
	case err != nil:
		return nil, err
	}
	c.deposit = &depositResult{tx: tx, amount: amount}
	m.forget(ch.ID) // the deposit changed the balance: read the record again next time
	return c, nil
}

// onlySynced reports whether ch, read again after a deposit's charge lost its compare-and-set,
// differs from what the deposit was verified against only by a chain sync that moved nothing
// the voucher depends on: the charged total is still the voucher's base, no refund holds funds,
// no withdrawal was started, and the balance still covers the voucher.
func onlySynced(ch *store.Channel, v *batch.Verified, price *big.Int, after store.ChannelChainState) bool {
	max := v.Payload.Voucher.MaxClaimableAmount
	return ch.Charged.Cmp(new(big.Int).Sub(max, price)) == 0 &&
		(ch.RefundHold == nil || ch.RefundHold.Sign() == 0) &&
		ch.WithdrawRequestedAt == after.WithdrawRequestedAt &&
		ch.Balance.Cmp(max) >= 0
}
