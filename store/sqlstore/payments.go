package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/payper/payper/store"
)

// ReservePayment implements store.Store.
func (s *Store) ReservePayment(ctx context.Context, p *store.Payment) (int64, error) {
	n, err := normalizePayment(p)
	if err != nil {
		return 0, err
	}
	now := s.timestamp()
	var id int64
	err = s.withRetry(ctx, func() error {
		return s.durableStatement(ctx, s.q.reserve, func(ctx context.Context, st boundStatement) error {
			return st.QueryRowContext(ctx,
				n.Scheme, n.Network, n.Asset, n.Payer, n.PayTo, n.Amount.String(), n.Nonce,
				s.dialect.TimeValue(n.ValidBefore), n.Method, n.Route, n.Resource,
				s.dialect.TimeValue(now), s.dialect.TimeValue(now)).Scan(&id)
		})
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("reserve payment %s/%s nonce %s: %w", n.Network, n.Payer, n.Nonce, store.ErrDuplicate)
	}
	if err != nil {
		return 0, fmt.Errorf("reserve payment: %w", err)
	}
	n.ID = id
	n.Status = store.StatusReserved
	n.TxHash, n.ErrorReason = "", ""
	n.CreatedAt, n.UpdatedAt = now, now
	*p = n
	return id, nil
}

// MarkSubmitted implements store.Store.
func (s *Store) MarkSubmitted(ctx context.Context, id int64, txHash string) error {
	h, err := normalizeTxHash(txHash)
	if err != nil {
		return err
	}
	err = s.transition(ctx, id, store.StatusSubmitted, s.q.markSubmitted, h, h)
	if errors.Is(err, store.ErrConflict) {
		// Already submitted under another hash: the earlier transaction was refused by the node
		// or replaced, so the new one is what the chain will see.
		err = s.transition(ctx, id, store.StatusSubmitted, s.q.resubmit, h, h)
	}
	return err
}

// MarkSettled implements store.Store.
func (s *Store) MarkSettled(ctx context.Context, id int64, txHash string) error {
	h, err := normalizeTxHash(txHash)
	if err != nil {
		return err
	}
	return s.transition(ctx, id, store.StatusSettled, s.q.markSettled, h, h)
}

// MarkVanished implements store.Store.
func (s *Store) MarkVanished(ctx context.Context, id int64, reason string) error {
	err := s.transition(ctx, id, store.StatusVanished, s.q.markVanished, reason, "")
	if errors.Is(err, store.ErrConflict) {
		// A repeat (another replica's reconciler got there first) is not a conflict.
		if p, gerr := s.GetPayment(ctx, id); gerr == nil && p.Status == store.StatusVanished {
			return nil
		}
	}
	return err
}

// MarkFailed implements store.Store.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string) error {
	return s.transition(ctx, id, store.StatusFailed, s.q.markFailed, reason, "")
}

// ReleasePayment implements store.Store.
func (s *Store) ReleasePayment(ctx context.Context, id int64, reason string) error {
	return s.transition(ctx, id, store.StatusReleased, s.q.release, reason, "")
}

// transition runs one compare-and-set UPDATE (value, updated_at, id). When
// it matches no row, the current state tells why: unknown id, a repeat of
// the same hash-carrying transition (success, so a retry after an unknown
// commit outcome is safe), or an illegal move.
func (s *Store) transition(ctx context.Context, id int64, to store.PaymentStatus, query, value, idempotentHash string) error {
	now := s.timestamp()
	var affected int64
	err := s.withRetry(ctx, func() error {
		return s.durableStatement(ctx, query, func(ctx context.Context, st boundStatement) error {
			res, err := st.ExecContext(ctx, value, s.dialect.TimeValue(now), id)
			if err != nil {
				return err
			}
			affected, err = res.RowsAffected()
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("mark payment %d %s: %w", id, to, err)
	}
	if affected == 1 {
		return nil
	}
	var status, hash string
	var async int64
	err = s.withRetry(ctx, func() error {
		return s.write.QueryRowContext(ctx, s.q.stateByID, id).Scan(&status, &hash, &async)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("mark payment %d %s: %w", id, to, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("mark payment %d %s: %w", id, to, err)
	case async == 1 && endsExposure(to):
		return s.asyncTransition(ctx, id, to, value)
	case idempotentHash != "" && store.PaymentStatus(status) == to && hash == idempotentHash:
		return nil
	}
	return fmt.Errorf("mark payment %d %s: it is %s: %w", id, to, status, store.ErrConflict)
}

// GetPayment implements store.Store.
func (s *Store) GetPayment(ctx context.Context, id int64) (*store.Payment, error) {
	p, err := s.queryOne(ctx, s.q.getByID, id)
	if err != nil {
		return nil, fmt.Errorf("get payment %d: %w", id, err)
	}
	return p, nil
}

// FindPayment implements store.Store.
func (s *Store) FindPayment(ctx context.Context, network, asset, payer, nonce string) (*store.Payment, error) {
	p, err := s.queryOne(ctx, s.q.findLive, network, normalizeHex(asset), normalizeHex(payer), normalizeHex(nonce))
	if err != nil {
		return nil, fmt.Errorf("find payment %s/%s nonce %s: %w", network, payer, nonce, err)
	}
	return p, nil
}

func (s *Store) queryOne(ctx context.Context, query string, args ...any) (*store.Payment, error) {
	var p store.Payment
	err := s.withRetry(ctx, func() error {
		var err error
		p, err = scanPayment(s.read.QueryRowContext(ctx, query, args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// ListPayments implements store.Store. Newest first means highest id first:
// ids follow insertion order even when the injected clock does not.
func (s *Store) ListPayments(ctx context.Context, f store.PaymentFilter) ([]store.Payment, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Network != "" {
		add("network = ?", f.Network)
	}
	if f.Payer != "" {
		add("payer = ?", normalizeHex(f.Payer))
	}
	if f.PayTo != "" {
		add("pay_to = ?", normalizeHex(f.PayTo))
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	query := `SELECT ` + paymentColumns + ` FROM payments`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, listLimit(f.Limit))
	ps, err := s.queryMany(ctx, s.dialect.bind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return ps, nil
}

func listLimit(n int) int {
	switch {
	case n <= 0:
		return store.DefaultListLimit
	case n > store.MaxListLimit:
		return store.MaxListLimit
	}
	return n
}

// UnfinishedPayments implements store.Store.
func (s *Store) UnfinishedPayments(ctx context.Context) ([]store.Payment, error) {
	ps, err := s.queryMany(ctx, s.q.unfinished)
	if err != nil {
		return nil, fmt.Errorf("unfinished payments: %w", err)
	}
	return ps, nil
}

// RecentSettlements implements store.Store.
func (s *Store) RecentSettlements(ctx context.Context, since time.Time, beforeID int64, limit int) ([]store.Payment, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	ps, err := s.queryMany(ctx, s.q.recentSettled, s.dialect.TimeValue(normalizeTime(since)), beforeID, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("recent settlements: %w", err)
	}
	return ps, nil
}

func (s *Store) queryMany(ctx context.Context, query string, args ...any) ([]store.Payment, error) {
	var ps []store.Payment
	err := s.withRetry(ctx, func() error {
		ps = ps[:0]
		rows, err := s.read.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPayment(rows)
			if err != nil {
				return err
			}
			ps = append(ps, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []store.Payment{}
	}
	return ps, nil
}
