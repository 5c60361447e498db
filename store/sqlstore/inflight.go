package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/payper/payper/store"
)

// A channel's in-flight charges live in its row, in the inflight column: entries
// ";<id>:<amount>:<expires, Unix microseconds>". A charge appends its entry in the same UPDATE
// that moves the charged total, and a finish removes it with one more UPDATE of that row, so
// tracking a request costs no other table and a read of the channel always sees the charged
// total and its in-flight part together.

// maxInFlightID bounds an in-flight charge's id.
const maxInFlightID = 64

// inFlightEntry is the text of f in a channel's inflight column.
func inFlightEntry(f store.InFlightCharge) string {
	return ";" + f.ID + ":" + f.Amount.String() + ":" + strconv.FormatInt(normalizeTime(f.Expires).UnixMicro(), 10)
}

// checkInFlight refuses an in-flight charge that is not exactly the charge's increase (giving
// it back subtracts its amount) or whose id could not be read back from the column.
func checkInFlight(c store.ChannelCharge) error {
	f := c.InFlight
	if f.ID == "" || len(f.ID) > maxInFlightID || strings.ContainsFunc(f.ID, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_')
	}) {
		return fmt.Errorf("%w: an in-flight charge needs an id of 1..%d letters, digits, '-' or '_'", store.ErrInvalid, maxInFlightID)
	}
	if f.Amount == nil || f.Amount.Cmp(new(big.Int).Sub(c.Charged, c.ExpectedCharged)) != 0 {
		return fmt.Errorf("%w: in-flight amount %v is not the charge's increase %s - %s", store.ErrInvalid, f.Amount, c.Charged, c.ExpectedCharged)
	}
	return nil
}

// inFlight is one parsed entry.
type inFlight struct {
	id      string
	amount  *big.Int
	expires time.Time
	text    string // the entry as stored
}

// parseInFlight reads an inflight column.
func parseInFlight(column string) ([]inFlight, error) {
	var out []inFlight
	for _, e := range strings.Split(column, ";")[1:] {
		parts := strings.Split(e, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("in-flight entry %q is malformed", e)
		}
		amount, ok := new(big.Int).SetString(parts[1], 10)
		micros, err := strconv.ParseInt(parts[2], 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("in-flight entry %q is malformed", e)
		}
		out = append(out, inFlight{id: parts[0], amount: amount, expires: time.UnixMicro(micros).UTC(), text: ";" + e})
	}
	return out, nil
}

// inFlightSum reads an inflight column as the sum of its amounts.
type inFlightSum struct{ v **big.Int }

func (d inFlightSum) Scan(src any) error {
	text, err := columnText("inflight", src, true)
	if err != nil {
		return err
	}
	entries, err := parseInFlight(text)
	if err != nil {
		return err
	}
	sum := new(big.Int)
	for _, e := range entries {
		sum.Add(sum, e.amount)
	}
	*d.v = sum
	return nil
}

// FinishChannelCharge implements store.ChannelStore.
func (s *Store) FinishChannelCharge(ctx context.Context, id string, f store.InFlightCharge) error {
	id = normalizeHex(id)
	what := "finish in-flight charge " + f.ID + " of channel " + id
	if f.Amount == nil {
		return fmt.Errorf("%s: %w: no amount", what, store.ErrInvalid)
	}
	entry := inFlightEntry(f)
	args := []any{entry, s.dialect.TimeValue(s.timestamp()), id, entry}
	if s.charges != nil {
		if s.closed.Load() {
			return errClosed
		}
		return s.charges.submit(&chargeReq{op: opFinish, args: args, what: what})
	}
	var n int64
	err := s.withRetry(ctx, func() error {
		res, err := s.write.ExecContext(ctx, s.cq.finish, args...)
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
func (s *Store) ReleaseChannelCharge(ctx context.Context, id, inFlightID string) error {
	id = normalizeHex(id)
	what := "release in-flight charge " + inFlightID + " of channel " + id
	var result error
	err := s.withRetry(ctx, func() error {
		result = nil
		return commitTx(ctx, s.write, func(tx *sql.Tx) error {
			var charged, claimed *big.Int
			var column string
			err := tx.QueryRowContext(ctx, s.cq.lockInFlight, id).Scan(amountDest{&charged}, amountDest{&claimed}, &column)
			if errors.Is(err, sql.ErrNoRows) {
				result = fmt.Errorf("%s: %w", what, store.ErrNotFound)
				return nil
			}
			if err != nil {
				return err
			}
			entries, err := parseInFlight(column)
			if err != nil {
				return permanent{err}
			}
			var found *inFlight
			for i := range entries {
				if entries[i].id == inFlightID {
					found = &entries[i]
				}
			}
			if found == nil {
				result = fmt.Errorf("%s: %w", what, store.ErrNotFound)
				return nil
			}
			after := new(big.Int).Sub(charged, found.amount)
			if after.Cmp(claimed) < 0 {
				// Claims take only final charges, so this cannot happen unless that rule was
				// broken: what is claimed on chain stays claimed.
				s.log.ErrorContext(ctx, "an in-flight charge was claimed before it was final; the payer keeps paying for a request that failed",
					"channel", id, "charged", charged, "claimed", claimed, "released", found.amount)
				after = claimed
			}
			_, err = tx.ExecContext(ctx, s.cq.setCharged, after.String(), strings.Replace(column, found.text, "", 1),
				s.dialect.TimeValue(s.timestamp()), id)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return result
}

// expiredPage is how many channels with charges in flight one query reads.
const expiredPage = 200

// ReleaseExpiredCharges implements store.ChannelStore.
func (s *Store) ReleaseExpiredCharges(ctx context.Context, now time.Time) (int, error) {
	now = normalizeTime(now)
	released, after := 0, ""
	for {
		type pending struct{ channel, id string }
		var expired []pending
		var last string
		rows := 0
		err := s.withRetry(ctx, func() error {
			expired, last, rows = expired[:0], "", 0
			q, err := s.read.QueryContext(ctx, s.cq.withInFlight, after, expiredPage)
			if err != nil {
				return err
			}
			defer q.Close()
			for q.Next() {
				var id, column string
				if err := q.Scan(&id, &column); err != nil {
					return err
				}
				rows, last = rows+1, id
				entries, err := parseInFlight(column)
				if err != nil {
					s.log.ErrorContext(ctx, "a channel's in-flight charges cannot be read", "channel", id, "err", err)
					continue
				}
				for _, e := range entries {
					if !e.expires.After(now) {
						expired = append(expired, pending{id, e.id})
					}
				}
			}
			return q.Err()
		})
		if err != nil {
			return released, fmt.Errorf("list in-flight charges: %w", err)
		}
		for _, e := range expired {
			switch err := s.ReleaseChannelCharge(ctx, e.channel, e.id); {
			case err == nil:
				released++
			case !errors.Is(err, store.ErrNotFound): // finished or released meanwhile: fine
				return released, err
			}
		}
		if rows < expiredPage {
			return released, nil
		}
		after = last
	}
}
