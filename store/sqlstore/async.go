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

// The async settlement flow's payments carry their amount in async_exposure, per payer and in
// total (the row of payer ''), from their reservation until they leave reserved or submitted.
// Every change happens in one transaction with the payment's own, under the rows' locks
// (SQLite: the writer's; PostgreSQL: FOR UPDATE, the total's row first), so concurrent
// reservations on any number of replicas can never pass a bound together.

// totalPayer is the payer of the row that holds everybody's exposure.
const totalPayer = ""

type asyncQueries struct {
	reserve, queue, queued, ensure, exposure, setExposure, block string
	settle, fail, release, lockPayment, firstSubmitted, requeue  string
}

func buildAsyncQueries(d *Dialect) asyncQueries {
	return asyncQueries{
		reserve: d.bind(`INSERT INTO payments (scheme, network, asset, payer, pay_to, amount, nonce,
	valid_before, method, route, resource, status, tx_hash, error_reason, created_at, updated_at, async, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', '', '', ?, ?, 1, ?)
ON CONFLICT (network, asset, payer, nonce) WHERE status <> 'released' DO NOTHING
RETURNING id`),
		queue: d.bind(`UPDATE payments SET queued = 1, updated_at = ?
WHERE id = ? AND status = 'reserved' AND async = 1`),
		queued: d.bind(`SELECT ` + paymentColumns + ` FROM payments
WHERE status = 'reserved' AND queued = 1 AND id > ? ORDER BY id LIMIT ?`),
		ensure:      d.bind(`INSERT INTO async_exposure (payer) VALUES (?) ON CONFLICT (payer) DO NOTHING`),
		exposure:    d.bind(`SELECT unsettled, blocked_at FROM async_exposure WHERE payer = ?` + d.ForUpdate),
		setExposure: d.bind(`UPDATE async_exposure SET unsettled = ? WHERE payer = ?`),
		block:       d.bind(`UPDATE async_exposure SET blocked_at = ? WHERE payer = ?`),
		settle:      d.bind(`UPDATE payments SET status = 'settled', tx_hash = ?, error_reason = '', updated_at = ? WHERE id = ?`),
		fail:        d.bind(`UPDATE payments SET status = 'failed', error_reason = ?, updated_at = ? WHERE id = ?`),
		release:     d.bind(`UPDATE payments SET status = 'released', error_reason = ?, updated_at = ? WHERE id = ?`),
		lockPayment: d.bind(`SELECT status, tx_hash, queued, payer, amount FROM payments WHERE id = ?` + d.ForUpdate),
		firstSubmitted: d.bind(`UPDATE payments SET status = 'submitted', tx_hash = ?, updated_at = ?
WHERE id = ? AND status = 'reserved'`),
		requeue: d.bind(`UPDATE payments SET status = 'reserved', updated_at = ?
WHERE id = ? AND status = 'submitted' AND tx_hash = ? AND async = 1 AND queued = 1`),
	}
}

// ReserveAsyncPayment implements store.AsyncStore.
func (s *Store) ReserveAsyncPayment(ctx context.Context, p *store.Payment, l store.AsyncLimits) (int64, error) {
	n, err := normalizePayment(p)
	if err != nil {
		return 0, err
	}
	if l.PerPayer == nil || l.Total == nil || l.PerPayer.Sign() < 0 || l.Total.Sign() < 0 {
		return 0, fmt.Errorf("%w: async limits need both bounds", store.ErrInvalid)
	}
	if n.Payload == "" {
		return 0, fmt.Errorf("%w: an async payment needs its payload", store.ErrInvalid)
	}
	now := s.timestamp()
	var id int64
	err = s.withRetry(ctx, func() error {
		return commitTx(ctx, s.write, func(tx *sql.Tx) error {
			if _, err := s.inTx(ctx, tx, s.aq.ensure).ExecContext(ctx, n.Payer); err != nil {
				return err
			}
			// The total's row first, in every transaction that takes both: no deadlocks.
			total, err := s.lockExposure(ctx, tx, totalPayer)
			if err != nil {
				return err
			}
			mine, err := s.lockExposure(ctx, tx, n.Payer)
			if err != nil {
				return err
			}
			if l.BlockFor > 0 && !mine.BlockedAt.IsZero() && now.Sub(mine.BlockedAt) < l.BlockFor {
				return permanent{fmt.Errorf("payer %s: %w", n.Payer, store.ErrBlocked)}
			}
			newMine, newTotal := new(big.Int).Add(mine.Unsettled, n.Amount), new(big.Int).Add(total.Unsettled, n.Amount)
			if newMine.Cmp(l.PerPayer) > 0 || newTotal.Cmp(l.Total) > 0 {
				return permanent{fmt.Errorf("payer %s would have %s unsettled, everybody %s: %w", n.Payer, newMine, newTotal, store.ErrLimit)}
			}
			err = s.inTx(ctx, tx, s.aq.reserve).QueryRowContext(ctx,
				n.Scheme, n.Network, n.Asset, n.Payer, n.PayTo, n.Amount.String(), n.Nonce,
				s.dialect.TimeValue(n.ValidBefore), n.Method, n.Route, n.Resource,
				s.dialect.TimeValue(now), s.dialect.TimeValue(now), n.Payload).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return permanent{fmt.Errorf("nonce %s: %w", n.Nonce, store.ErrDuplicate)}
			}
			if err != nil {
				return err
			}
			if err := s.writeExposure(ctx, tx, totalPayer, newTotal); err != nil {
				return err
			}
			return s.writeExposure(ctx, tx, n.Payer, newMine)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("reserve async payment: %w", err)
	}
	n.ID, n.Status, n.Async = id, store.StatusReserved, true
	n.TxHash, n.ErrorReason = "", ""
	n.CreatedAt, n.UpdatedAt = now, now
	*p = n
	return id, nil
}

// lockExposure reads an exposure row, locked until the transaction ends. A missing row is none.
func (s *Store) lockExposure(ctx context.Context, tx *sql.Tx, payer string) (store.Exposure, error) {
	e := store.Exposure{Unsettled: new(big.Int)}
	var blocked time.Time
	err := s.inTx(ctx, tx, s.aq.exposure).QueryRowContext(ctx, payer).Scan(amountDest{&e.Unsettled}, timeDest{&blocked})
	if errors.Is(err, sql.ErrNoRows) {
		return e, nil
	}
	if blocked.UnixMicro() > 0 {
		e.BlockedAt = blocked
	}
	return e, err
}

func (s *Store) writeExposure(ctx context.Context, tx *sql.Tx, payer string, v *big.Int) error {
	_, err := s.inTx(ctx, tx, s.aq.setExposure).ExecContext(ctx, v.String(), payer)
	return err
}

// QueuePayment implements store.AsyncStore.
func (s *Store) QueuePayment(ctx context.Context, id int64) error {
	var affected int64
	err := s.withRetry(ctx, func() error {
		res, err := s.prepared(ctx, s.aq.queue).ExecContext(ctx, s.dialect.TimeValue(s.timestamp()), id)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("queue payment %d: %w", id, err)
	case affected == 0:
		return fmt.Errorf("queue payment %d: not a reserved async payment: %w", id, store.ErrConflict)
	}
	return nil
}

// QueuedPayments implements store.AsyncStore.
func (s *Store) QueuedPayments(ctx context.Context, afterID int64, limit int) ([]store.Payment, error) {
	ps, err := s.queryMany(ctx, s.aq.queued, afterID, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("queued payments: %w", err)
	}
	return ps, nil
}

// AsyncExposure implements store.AsyncStore.
func (s *Store) AsyncExposure(ctx context.Context, payer string) (store.Exposure, error) {
	e := store.Exposure{Unsettled: new(big.Int)}
	var blocked time.Time
	query := s.dialect.bind(`SELECT unsettled, blocked_at FROM async_exposure WHERE payer = ?`)
	err := s.withRetry(ctx, func() error {
		return s.read.QueryRowContext(ctx, query, normalizeHex(payer)).Scan(amountDest{&e.Unsettled}, timeDest{&blocked})
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return e, nil
	case err != nil:
		return e, fmt.Errorf("async exposure of %q: %w", payer, err)
	}
	if blocked.UnixMicro() > 0 {
		e.BlockedAt = blocked
	}
	return e, nil
}

// MarkFirstSubmitted implements store.AsyncStore.
func (s *Store) MarkFirstSubmitted(ctx context.Context, id int64, txHash string) error {
	h, err := normalizeTxHash(txHash)
	if err != nil {
		return err
	}
	return s.transition(ctx, id, store.StatusSubmitted, s.aq.firstSubmitted, h, h)
}

// RequeuePayment implements store.AsyncStore.
func (s *Store) RequeuePayment(ctx context.Context, id int64, txHash string) error {
	h, err := normalizeTxHash(txHash)
	if err != nil {
		return err
	}
	var affected int64
	err = s.withRetry(ctx, func() error {
		res, err := s.write.ExecContext(ctx, s.aq.requeue, s.dialect.TimeValue(s.timestamp()), id, h)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("requeue payment %d: %w", id, err)
	case affected == 0:
		return fmt.Errorf("requeue payment %d: not a queued payment submitted with %s: %w", id, h, store.ErrConflict)
	}
	return nil
}

// endsExposure reports whether moving to status ends an async payment's exposure.
func endsExposure(to store.PaymentStatus) bool {
	return to == store.StatusSettled || to == store.StatusFailed || to == store.StatusReleased
}

// asyncTransition moves an async payment to settled, failed or released, in one transaction
// with its exposure: leaving reserved or submitted takes its amount off its payer's and the
// total; failing blocks its payer. A queued payment (served) is never released.
func (s *Store) asyncTransition(ctx context.Context, id int64, to store.PaymentStatus, value string) error {
	now := s.timestamp()
	err := s.withRetry(ctx, func() error {
		return commitTx(ctx, s.write, func(tx *sql.Tx) error {
			var status, hash, payer string
			var queued int64
			var amount *big.Int
			if err := s.inTx(ctx, tx, s.aq.lockPayment).QueryRowContext(ctx, id).Scan(&status, &hash, &queued, &payer, amountDest{&amount}); err != nil {
				return err
			}
			from := store.PaymentStatus(status)
			if to == store.StatusSettled && from == to && hash == value {
				return nil // a repeat
			}
			if !asyncMoveAllowed(from, to, queued == 1) {
				return permanent{fmt.Errorf("it is %s: %w", status, store.ErrConflict)}
			}
			query := map[store.PaymentStatus]string{store.StatusSettled: s.aq.settle, store.StatusFailed: s.aq.fail, store.StatusReleased: s.aq.release}[to]
			if _, err := s.inTx(ctx, tx, query).ExecContext(ctx, value, s.dialect.TimeValue(now), id); err != nil {
				return err
			}
			if from == store.StatusReserved || from == store.StatusSubmitted {
				if err := s.takeOffExposure(ctx, tx, payer, amount); err != nil {
					return err
				}
			}
			if to == store.StatusFailed {
				_, err := s.inTx(ctx, tx, s.aq.block).ExecContext(ctx, s.dialect.TimeValue(now), payer)
				return err
			}
			return nil
		})
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("mark async payment %d %s: %w", id, to, err)
	}
	return nil
}

// asyncMoveAllowed is the state machine of store.PaymentStatus, with a queued payment never
// released.
func asyncMoveAllowed(from, to store.PaymentStatus, queued bool) bool {
	switch to {
	case store.StatusSettled:
		return from == store.StatusReserved || from == store.StatusSubmitted || from == store.StatusVanished
	case store.StatusFailed:
		return from == store.StatusReserved || from == store.StatusSubmitted
	case store.StatusReleased:
		return from == store.StatusReserved && !queued
	}
	return false
}

// takeOffExposure subtracts amount from payer's and the total's unsettled value (never below
// zero), the total's row first.
func (s *Store) takeOffExposure(ctx context.Context, tx *sql.Tx, payer string, amount *big.Int) error {
	for _, who := range []string{totalPayer, payer} {
		e, err := s.lockExposure(ctx, tx, who)
		if err != nil {
			return err
		}
		left := new(big.Int).Sub(e.Unsettled, amount)
		if left.Sign() < 0 {
			s.log.Error("async exposure would go below zero; set to zero", "payer", who, "unsettled", e.Unsettled, "amount", amount)
			left.SetInt64(0)
		}
		if err := s.writeExposure(ctx, tx, who, left); err != nil {
			return err
		}
	}
	return nil
}
