package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/payper/payper/store"
)

// channelColumns is the column list every channel query selects, in the order scanChannel
// expects.
const channelColumns = `id, network, payer, payer_authorizer, receiver, receiver_authorizer, token,
	withdraw_delay, salt, charged, signed_max, signature, claimed, balance, total_claimed,
	pending_withdrawal, withdraw_requested_at, refund_nonce, chain_version, synced_block, synced_at,
	created_at, updated_at, refund_hold, refund_hold_until`

type channelQueries struct {
	create, get, charge, hold, release, sync, markClaimed, state, list, listByID string
	chargeInFlight, finish, lockInFlight, setCharged, withInFlight               string
}

func buildChannelQueries(d *Dialect) channelQueries {
	selectChannel := `SELECT ` + channelColumns + `, inflight FROM channels`
	return channelQueries{
		// The charge compare-and-set that also records the charge as in flight.
		chargeInFlight: d.bind(`UPDATE channels SET charged = ?, signed_max = ?, signature = ?, updated_at = ?,
	inflight = inflight || ?
WHERE id = ? AND charged = ? AND chain_version = ?`),
		finish: d.bind(`UPDATE channels SET inflight = replace(inflight, ?, ''), updated_at = ?
WHERE id = ? AND replace(inflight, ?, '') <> inflight`),
		lockInFlight: d.bind(`SELECT charged, claimed, inflight FROM channels WHERE id = ?` + d.ForUpdate),
		setCharged:   d.bind(`UPDATE channels SET charged = ?, inflight = ?, updated_at = ? WHERE id = ?`),
		withInFlight: d.bind(`SELECT id, inflight FROM channels WHERE inflight <> '' AND id > ? ORDER BY id LIMIT ?`),
		create: d.bind(`INSERT INTO channels (` + channelColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, '0', ?)
ON CONFLICT (id) DO NOTHING RETURNING id`),
		get: d.bind(selectChannel + ` WHERE id = ?`),
		// The compare-and-set that makes a voucher pay for one request only.
		charge: d.bind(`UPDATE channels SET charged = ?, signed_max = ?, signature = ?, updated_at = ?
WHERE id = ? AND charged = ? AND chain_version = ?`),
		hold: d.bind(`UPDATE channels SET refund_hold = ?, refund_hold_until = ?, refund_hold_nonce = refund_nonce,
	chain_version = chain_version + 1, updated_at = ?
WHERE id = ? AND charged = ? AND chain_version = ? AND (refund_hold = '0' OR refund_hold_until <= ?)`),
		// A release makes views only more cautious than the record, so the version stays.
		release: d.bind(`UPDATE channels SET refund_hold = '0', updated_at = ? WHERE id = ? AND refund_hold = ?`),
		// A refund hold outlives syncs until the refund nonce moves: the refund has landed then.
		sync: d.bind(`UPDATE channels SET balance = ?, total_claimed = ?, pending_withdrawal = ?,
	withdraw_requested_at = ?, refund_nonce = ?,
	refund_hold = CASE WHEN refund_hold_nonce = ? THEN refund_hold ELSE '0' END,
	chain_version = chain_version + 1, synced_block = ?, synced_at = ?, updated_at = ?
WHERE id = ? AND synced_block <= ?`),
		markClaimed: d.bind(`UPDATE channels SET claimed = ?, updated_at = ? WHERE id = ? AND claimed = ?`),
		state:       d.bind(`SELECT chain_version FROM channels WHERE id = ?`),
		list: d.bind(selectChannel + `
WHERE (? = '' OR network = ?) AND (? = '' OR receiver = ?) AND (? = '' OR payer = ?)
	AND (? = 0 OR charged <> claimed) AND ? = ''
ORDER BY updated_at DESC, id LIMIT ?`),
		listByID: d.bind(selectChannel + `
WHERE (? = '' OR network = ?) AND (? = '' OR receiver = ?) AND (? = '' OR payer = ?)
	AND (? = 0 OR charged <> claimed) AND id > ?
ORDER BY id LIMIT ?`),
	}
}

func checkAmounts(amounts map[string]*big.Int) error {
	for name, a := range amounts {
		switch {
		case a == nil:
			return fmt.Errorf("%w: channel without %s", store.ErrInvalid, name)
		case a.Sign() < 0:
			return fmt.Errorf("%w: negative %s", store.ErrInvalid, name)
		case a.BitLen() > maxAmountBits:
			return fmt.Errorf("%w: %s exceeds 2^256-1", store.ErrInvalid, name)
		}
	}
	return nil
}

func zeroIfNil(a *big.Int) *big.Int {
	if a == nil {
		return new(big.Int)
	}
	return a
}

// normalizeChannel fills zero amounts and lowercases hex fields.
func normalizeChannel(c *store.Channel) (store.Channel, error) {
	if c == nil {
		return store.Channel{}, fmt.Errorf("%w: nil channel", store.ErrInvalid)
	}
	n := *c
	for _, f := range []*string{&n.ID, &n.Payer, &n.PayerAuthorizer, &n.Receiver, &n.ReceiverAuthorizer, &n.Token, &n.Salt, &n.Signature} {
		*f = normalizeHex(*f)
	}
	for _, f := range []struct{ name, value string }{{"id", n.ID}, {"network", n.Network}, {"payer", n.Payer},
		{"receiver", n.Receiver}, {"receiverAuthorizer", n.ReceiverAuthorizer}, {"token", n.Token}, {"salt", n.Salt}} {
		if f.value == "" {
			return store.Channel{}, fmt.Errorf("%w: channel without %s", store.ErrInvalid, f.name)
		}
	}
	for _, a := range []**big.Int{&n.Charged, &n.SignedMax, &n.Claimed, &n.Balance, &n.TotalClaimed, &n.PendingWithdrawal, &n.RefundNonce} {
		*a = zeroIfNil(*a)
	}
	err := checkAmounts(map[string]*big.Int{"charged": n.Charged, "signedMax": n.SignedMax, "claimed": n.Claimed,
		"balance": n.Balance, "totalClaimed": n.TotalClaimed, "pendingWithdrawal": n.PendingWithdrawal, "refundNonce": n.RefundNonce})
	return n, err
}

// CreateChannel implements store.ChannelStore.
func (s *Store) CreateChannel(ctx context.Context, c *store.Channel) error {
	n, err := normalizeChannel(c)
	if err != nil {
		return err
	}
	now := s.timestamp()
	synced := normalizeTime(n.SyncedAt)
	var id string
	err = s.withRetry(ctx, func() error {
		return s.write.QueryRowContext(ctx, s.cq.create, n.ID, n.Network, n.Payer, n.PayerAuthorizer, n.Receiver,
			n.ReceiverAuthorizer, n.Token, n.WithdrawDelay, n.Salt, n.Charged.String(), n.SignedMax.String(),
			n.Signature, n.Claimed.String(), n.Balance.String(), n.TotalClaimed.String(), n.PendingWithdrawal.String(),
			n.WithdrawRequestedAt, n.RefundNonce.String(), int64(n.SyncedBlock), s.dialect.TimeValue(synced),
			s.dialect.TimeValue(now), s.dialect.TimeValue(now), s.dialect.TimeValue(time.Unix(0, 0).UTC())).Scan(&id)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("create channel %s: %w", n.ID, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create channel %s: %w", n.ID, err)
	}
	n.ChainVersion, n.SyncedAt, n.CreatedAt, n.UpdatedAt = 1, synced, now, now
	*c = n
	return nil
}

// GetChannel implements store.ChannelStore.
func (s *Store) GetChannel(ctx context.Context, id string) (*store.Channel, error) {
	var c store.Channel
	err := s.withRetry(ctx, func() error {
		var err error
		c, err = s.scanChannel(s.read.QueryRowContext(ctx, s.cq.get, normalizeHex(id)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get channel %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get channel %s: %w", id, err)
	}
	return &c, nil
}

// ChargeChannel implements store.ChannelStore.
func (s *Store) ChargeChannel(ctx context.Context, c store.ChannelCharge) error {
	if err := checkAmounts(map[string]*big.Int{"expected charge": c.ExpectedCharged, "charge": c.Charged, "signedMax": c.SignedMax}); err != nil {
		return err
	}
	if c.Charged.Cmp(c.ExpectedCharged) <= 0 {
		// A charged total only grows; anything else would serve a request on an old payment.
		return fmt.Errorf("%w: charge to %s from %s does not increase the charged total", store.ErrInvalid, c.Charged, c.ExpectedCharged)
	}
	id := normalizeHex(c.ID)
	query := s.cq.charge
	args := []any{c.Charged.String(), c.SignedMax.String(), normalizeHex(c.Signature), s.dialect.TimeValue(s.timestamp())}
	if c.InFlight != nil {
		if err := checkInFlight(c); err != nil {
			return err
		}
		query = s.cq.chargeInFlight
		args = append(args, inFlightEntry(*c.InFlight))
	}
	args = append(args, id, c.ExpectedCharged.String(), c.ChainVersion)
	if s.charges != nil {
		if s.closed.Load() {
			return errClosed
		}
		return s.charges.submit(&chargeReq{op: opCharge, query: query, args: args, id: id, what: "charge channel " + id})
	}
	return s.compareAndSet(ctx, "charge channel "+id, id, query, args...)
}

// HoldChannelRefund implements store.ChannelStore.
func (s *Store) HoldChannelRefund(ctx context.Context, h store.ChannelRefundHold) error {
	if err := checkAmounts(map[string]*big.Int{"expected charge": h.ExpectedCharged, "refund hold": h.Amount}); err != nil {
		return err
	}
	if h.Amount.Sign() == 0 {
		return fmt.Errorf("%w: a refund hold of zero", store.ErrInvalid)
	}
	id, now := normalizeHex(h.ID), s.timestamp()
	return s.compareAndSet(ctx, "hold refund on channel "+id, id, s.cq.hold, h.Amount.String(), s.dialect.TimeValue(normalizeTime(h.Until)),
		s.dialect.TimeValue(now), id, h.ExpectedCharged.String(), h.ChainVersion, s.dialect.TimeValue(now))
}

// ReleaseChannelRefund implements store.ChannelStore.
func (s *Store) ReleaseChannelRefund(ctx context.Context, id string, amount *big.Int) error {
	if err := checkAmounts(map[string]*big.Int{"refund hold": amount}); err != nil {
		return err
	}
	id = normalizeHex(id)
	return s.compareAndSet(ctx, "release refund hold on channel "+id, id, s.cq.release, s.dialect.TimeValue(s.timestamp()), id, amount.String())
}

// MarkChannelClaimed implements store.ChannelStore.
func (s *Store) MarkChannelClaimed(ctx context.Context, id string, from, to *big.Int) error {
	if err := checkAmounts(map[string]*big.Int{"from": from, "to": to}); err != nil {
		return err
	}
	id = normalizeHex(id)
	return s.compareAndSet(ctx, "mark channel claimed "+id, id, s.cq.markClaimed, to.String(), s.dialect.TimeValue(s.timestamp()), id, from.String())
}

// SyncChannel implements store.ChannelStore.
func (s *Store) SyncChannel(ctx context.Context, id string, st store.ChannelChainState) error {
	amounts := map[string]*big.Int{"balance": st.Balance, "totalClaimed": st.TotalClaimed,
		"pendingWithdrawal": zeroIfNil(st.PendingWithdrawal), "refundNonce": zeroIfNil(st.RefundNonce)}
	if err := checkAmounts(amounts); err != nil {
		return err
	}
	id = normalizeHex(id)
	now := s.dialect.TimeValue(s.timestamp())
	err := s.compareAndSet(ctx, "sync channel "+id, id, s.cq.sync, st.Balance.String(), st.TotalClaimed.String(),
		amounts["pendingWithdrawal"].String(), st.WithdrawRequestedAt, amounts["refundNonce"].String(), amounts["refundNonce"].String(),
		int64(st.Block), now, now, id, int64(st.Block))
	if errors.Is(err, store.ErrConflict) {
		return nil // an older block's state: the newer one already recorded wins
	}
	return err
}

// compareAndSet runs a conditional UPDATE on channel id. No row changed means ErrNotFound when
// the channel does not exist and ErrConflict when its state moved.
func (s *Store) compareAndSet(ctx context.Context, what, id, query string, args ...any) error {
	var affected int64
	err := s.withRetry(ctx, func() error {
		res, err := s.write.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if affected == 1 {
		return nil
	}
	var version int64
	err = s.withRetry(ctx, func() error { return s.write.QueryRowContext(ctx, s.cq.state, id).Scan(&version) })
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, store.ErrConflict)
}

// ListChannels implements store.ChannelStore.
func (s *Store) ListChannels(ctx context.Context, f store.ChannelFilter) ([]store.Channel, error) {
	limit := listLimit(f.Limit)
	unclaimed := 0
	if f.Unclaimed {
		unclaimed = 1
	}
	recv, payer := normalizeHex(f.Receiver), normalizeHex(f.Payer)
	query, after := s.cq.list, ""
	if f.ByID {
		query, after = s.cq.listByID, normalizeHex(f.AfterID)
	} else if f.AfterID != "" {
		return nil, fmt.Errorf("%w: AfterID pages only a ByID listing", store.ErrInvalid)
	}
	var out []store.Channel
	err := s.withRetry(ctx, func() error {
		out = out[:0]
		rows, err := s.read.QueryContext(ctx, query, f.Network, f.Network, recv, recv, payer, payer, unclaimed, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := s.scanChannel(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return out, nil
}

// scanChannel reads a channel row. A refund hold past its time is reported as no hold.
func (s *Store) scanChannel(row rowScanner) (store.Channel, error) {
	var c store.Channel
	var block int64
	err := row.Scan(&c.ID, &c.Network, &c.Payer, &c.PayerAuthorizer, &c.Receiver, &c.ReceiverAuthorizer, &c.Token,
		&c.WithdrawDelay, &c.Salt, amountDest{&c.Charged}, amountDest{&c.SignedMax}, &c.Signature, amountDest{&c.Claimed},
		amountDest{&c.Balance}, amountDest{&c.TotalClaimed}, amountDest{&c.PendingWithdrawal}, &c.WithdrawRequestedAt,
		amountDest{&c.RefundNonce}, &c.ChainVersion, &block, timeDest{&c.SyncedAt}, timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt},
		amountDest{&c.RefundHold}, timeDest{&c.RefundHoldUntil}, inFlightSum{&c.InFlight})
	c.SyncedBlock = uint64(block)
	if err == nil && c.RefundHold.Sign() > 0 && !c.RefundHoldUntil.After(s.timestamp()) {
		c.RefundHold = new(big.Int)
	}
	return c, err
}
