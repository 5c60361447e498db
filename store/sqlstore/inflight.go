package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/payper/payper/store"
)

// maxInFlightID bounds an in-flight charge's id.
const maxInFlightID = 64

// inflightArgs checks an in-flight charge against the charge it rides on and returns its row.
func (s *Store) inflightArgs(c store.ChannelCharge, channelID string) ([]any, error) {
	f := c.InFlight
	if f.ID == "" || len(f.ID) > maxInFlightID {
		return nil, fmt.Errorf("%w: an in-flight charge needs an id of 1..%d characters", store.ErrInvalid, maxInFlightID)
	}
	// Giving the charge back subtracts exactly this amount, so it must be exactly the increase.
	if f.Amount == nil || f.Amount.Cmp(new(big.Int).Sub(c.Charged, c.ExpectedCharged)) != 0 {
		return nil, fmt.Errorf("%w: in-flight amount %v is not the charge's increase %s - %s", store.ErrInvalid, f.Amount, c.Charged, c.ExpectedCharged)
	}
	now := s.timestamp()
	return []any{f.ID, channelID, f.Amount.String(), s.dialect.TimeValue(normalizeTime(f.Expires)), s.dialect.TimeValue(now)}, nil
}

// chargeInTx applies a charge and its in-flight row in one transaction (backends without
// grouped charges).
func (s *Store) chargeInTx(ctx context.Context, id string, args, inflight []any) error {
	what := "charge channel " + id
	var result error
	err := s.withRetry(ctx, func() error {
		result = nil
		return commitTx(ctx, s.write, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.cq.charge, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 1 {
				_, err = tx.ExecContext(ctx, s.cq.inflightInsert, inflight...)
				return err
			}
			var version int64
			err = tx.QueryRowContext(ctx, s.cq.state, id).Scan(&version)
			switch {
			case err == nil:
				result = fmt.Errorf("%s: %w", what, store.ErrConflict)
			case errors.Is(err, sql.ErrNoRows):
				result = fmt.Errorf("%s: %w", what, store.ErrNotFound)
			default:
				return err
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return result
}

// FinishChannelCharge implements store.ChannelStore.
func (s *Store) FinishChannelCharge(ctx context.Context, inFlightID string) error {
	what := "finish in-flight charge " + inFlightID
	if s.charges != nil {
		if s.closed.Load() {
			return errClosed
		}
		// Through the charge group: the answer comes after the flush, so a request is never
		// served on a finish a crash could undo.
		return s.charges.submit(&chargeReq{op: opFinish, args: []any{inFlightID}, what: what})
	}
	var n int64
	err := s.withRetry(ctx, func() error {
		res, err := s.write.ExecContext(ctx, s.cq.inflightDelete, inFlightID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case n != 1:
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// ReleaseChannelCharge implements store.ChannelStore.
func (s *Store) ReleaseChannelCharge(ctx context.Context, inFlightID string) error {
	what := "release in-flight charge " + inFlightID
	var result error
	err := s.withRetry(ctx, func() error {
		result = nil
		return commitTx(ctx, s.write, func(tx *sql.Tx) error {
			var channelID string
			var amount *big.Int
			err := tx.QueryRowContext(ctx, s.cq.inflightGet, inFlightID).Scan(&channelID, amountDest{&amount})
			if errors.Is(err, sql.ErrNoRows) {
				result = fmt.Errorf("%s: %w", what, store.ErrNotFound)
				return nil
			}
			if err != nil {
				return err
			}
			var charged, claimed *big.Int
			if err := tx.QueryRowContext(ctx, s.cq.lockCharged, channelID).Scan(amountDest{&charged}, amountDest{&claimed}); err != nil {
				return err
			}
			after := new(big.Int).Sub(charged, amount)
			if after.Cmp(claimed) < 0 {
				// Claims take only final charges, so this cannot happen unless that rule was
				// broken: what is claimed on chain stays claimed.
				s.log.ErrorContext(ctx, "an in-flight charge was claimed before it was final; the payer keeps paying for a request that failed",
					"channel", channelID, "charged", charged, "claimed", claimed, "released", amount)
				after = claimed
			}
			if _, err := tx.ExecContext(ctx, s.cq.setCharged, after.String(), s.dialect.TimeValue(s.timestamp()), channelID); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.cq.inflightDelete, inFlightID)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return result
}

// expiredPage is how many expired in-flight charges one query reads.
const expiredPage = 200

// ReleaseExpiredCharges implements store.ChannelStore.
func (s *Store) ReleaseExpiredCharges(ctx context.Context, now time.Time) (int, error) {
	released := 0
	for {
		var ids []string
		err := s.withRetry(ctx, func() error {
			ids = ids[:0]
			rows, err := s.read.QueryContext(ctx, s.cq.inflightExpired, s.dialect.TimeValue(normalizeTime(now)), expiredPage)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return rows.Err()
		})
		if err != nil {
			return released, fmt.Errorf("list expired in-flight charges: %w", err)
		}
		for _, id := range ids {
			switch err := s.ReleaseChannelCharge(ctx, id); {
			case err == nil:
				released++
			case !errors.Is(err, store.ErrNotFound): // finished or released meanwhile: fine
				return released, err
			}
		}
		if len(ids) < expiredPage {
			return released, nil
		}
	}
}

// amountSum reads a comma-joined list of amounts (NULL for none) as their exact sum.
type amountSum struct{ v **big.Int }

func (d amountSum) Scan(src any) error {
	sum := new(big.Int)
	*d.v = sum
	var text string
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		text = v
	case []byte:
		text = string(v)
	case int64:
		sum.SetInt64(v)
		return nil
	default:
		return fmt.Errorf("amount list: unexpected %T", src)
	}
	for _, part := range strings.Split(text, ",") {
		n, ok := new(big.Int).SetString(part, 10)
		if !ok {
			return fmt.Errorf("amount list: %q is not a decimal integer", part)
		}
		sum.Add(sum, n)
	}
	return nil
}
