package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/payper/payper/store"
)

const idempotencyColumns = `payment_id, fingerprint, owner, state, charge_ref, status, header, body,
	body_omitted, lease_until, expires_at, created_at, updated_at`

type idempotencyQueries struct {
	claim, get, update, release, purge string
}

func buildIdempotencyQueries(d *Dialect) idempotencyQueries {
	return idempotencyQueries{
		// One statement decides who holds the key, so two requests or two replicas claiming it
		// at once cannot both win: the primary key serialises them, and the loser's conflict
		// clause finds the winner's row and, unless that row is dead, changes nothing.
		claim: d.bind(`INSERT INTO idempotent_responses (` + idempotencyColumns + `)
VALUES (?, ?, ?, 'in_flight', '', 0, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (payment_id) DO UPDATE SET fingerprint = excluded.fingerprint, owner = excluded.owner,
	state = 'in_flight', charge_ref = '', status = 0, header = excluded.header, body = excluded.body,
	body_omitted = excluded.body_omitted, lease_until = excluded.lease_until,
	expires_at = excluded.expires_at, created_at = excluded.created_at, updated_at = excluded.updated_at
WHERE idempotent_responses.expires_at <= ?
	OR (idempotent_responses.state = 'in_flight' AND idempotent_responses.lease_until <= ?
		AND idempotent_responses.fingerprint = excluded.fingerprint)
RETURNING owner`),
		get: d.bind(`SELECT ` + idempotencyColumns + ` FROM idempotent_responses
WHERE payment_id = ? AND expires_at > ?`),
		update: d.bind(`UPDATE idempotent_responses SET state = ?, charge_ref = ?, status = ?, header = ?,
	body = ?, body_omitted = ?, lease_until = ?, updated_at = ?
WHERE payment_id = ? AND owner = ? AND state = ? AND expires_at > ?`),
		release: d.bind(`DELETE FROM idempotent_responses WHERE payment_id = ? AND owner = ?`),
		purge: d.bind(`DELETE FROM idempotent_responses WHERE payment_id IN (
	SELECT payment_id FROM idempotent_responses WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`),
	}
}

// ClaimIdempotencyKey implements store.IdempotencyStore.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, c store.IdempotencyClaim) (*store.IdempotentResponse, bool, error) {
	if err := checkClaim(c); err != nil {
		return nil, false, err
	}
	// The holder may release its record between a lost claim and the read of the winner; a
	// few rounds settle that without blocking anyone.
	for range 3 {
		now := s.timestamp()
		var owner string
		err := s.withRetry(ctx, func() error {
			return s.writeStatement(ctx, c.Relaxed, s.iq.claim, func(ctx context.Context, st boundStatement) error {
				return st.QueryRowContext(ctx, c.Key, c.Fingerprint, c.Owner, []byte{}, []byte{}, false,
					s.dialect.TimeValue(normalizeTime(now.Add(c.Lease))), s.dialect.TimeValue(normalizeTime(now.Add(c.TTL))),
					s.dialect.TimeValue(now), s.dialect.TimeValue(now),
					s.dialect.TimeValue(now), s.dialect.TimeValue(now)).Scan(&owner)
			})
		})
		switch {
		case err == nil:
			return &store.IdempotentResponse{
				Key: c.Key, Fingerprint: c.Fingerprint, Owner: owner, State: store.IdempotencyInFlight,
				LeaseUntil: normalizeTime(now.Add(c.Lease)), Leased: c.Lease > 0, ExpiresAt: normalizeTime(now.Add(c.TTL)),
				CreatedAt: now, UpdatedAt: now,
			}, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		r, err := s.GetIdempotentResponse(ctx, c.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		return r, false, nil
	}
	return nil, false, fmt.Errorf("claim idempotency key: %w", Unavailable(errors.New("the key changed hands repeatedly")))
}

func checkClaim(c store.IdempotencyClaim) error {
	switch {
	case c.Key == "" || len(c.Key) > store.MaxIdempotencyKeyBytes:
		return fmt.Errorf("%w: idempotency key of %d bytes", store.ErrInvalid, len(c.Key))
	case c.Fingerprint == "" || c.Owner == "":
		return fmt.Errorf("%w: idempotency claim without fingerprint or owner", store.ErrInvalid)
	case c.TTL <= 0 || c.Lease < 0:
		return fmt.Errorf("%w: idempotency claim with TTL %s, lease %s", store.ErrInvalid, c.TTL, c.Lease)
	}
	return nil
}

// GetIdempotentResponse implements store.IdempotencyStore. It reads from the writer: a retry
// must see what the request holding the key just wrote.
func (s *Store) GetIdempotentResponse(ctx context.Context, key string) (*store.IdempotentResponse, error) {
	now := s.timestamp()
	var r store.IdempotentResponse
	err := s.withRetry(ctx, func() error {
		var err error
		r, err = scanIdempotent(s.write.QueryRowContext(ctx, s.iq.get, key, s.dialect.TimeValue(now)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("idempotency key %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get idempotency key: %w", err)
	}
	r.Leased = r.LeaseUntil.After(now)
	return &r, nil
}

// UpdateIdempotentResponse implements store.IdempotencyStore.
func (s *Store) UpdateIdempotentResponse(ctx context.Context, u store.IdempotencyUpdate) error {
	switch {
	case !u.From.Valid() || !u.To.Valid() || u.Key == "" || u.Owner == "" || u.Lease < 0:
		return fmt.Errorf("%w: idempotency update %+v", store.ErrInvalid, u.Key)
	case len(u.Body) > store.MaxIdempotentBodyBytes || len(u.Header) > store.MaxIdempotentHeaderSize:
		return fmt.Errorf("%w: idempotent response of %d bytes", store.ErrInvalid, len(u.Header)+len(u.Body))
	}
	now := s.timestamp()
	var affected int64
	err := s.withRetry(ctx, func() error {
		return s.writeStatement(ctx, u.Relaxed, s.iq.update, func(ctx context.Context, st boundStatement) error {
			res, err := st.ExecContext(ctx, string(u.To), u.ChargeRef, u.Status, nonNil(u.Header), nonNil(u.Body),
				u.BodyOmitted, s.dialect.TimeValue(normalizeTime(now.Add(u.Lease))), s.dialect.TimeValue(now),
				u.Key, u.Owner, string(u.From), s.dialect.TimeValue(now))
			if err != nil {
				return err
			}
			affected, err = res.RowsAffected()
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("update idempotency key: %w", err)
	}
	if affected == 1 {
		return nil
	}
	if _, err := s.GetIdempotentResponse(ctx, u.Key); err != nil {
		return fmt.Errorf("update idempotency key: %w", err)
	}
	return fmt.Errorf("update idempotency key %q from %s: not held in that state: %w", u.Key, u.From, store.ErrConflict)
}

// ReleaseIdempotencyKey implements store.IdempotencyStore.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, key, owner string) error {
	err := s.withRetry(ctx, func() error {
		return s.writeStatement(ctx, true, s.iq.release, func(ctx context.Context, st boundStatement) error {
			_, err := st.ExecContext(ctx, key, owner)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// PurgeIdempotentResponses implements store.IdempotencyStore.
func (s *Store) PurgeIdempotentResponses(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("%w: purge limit %d", store.ErrInvalid, limit)
	}
	now := s.timestamp()
	var affected int64
	err := s.withRetry(ctx, func() error {
		res, err := s.write.ExecContext(ctx, s.iq.purge, s.dialect.TimeValue(now), limit)
		if err != nil {
			return err
		}
		affected, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge idempotent responses: %w", err)
	}
	return int(affected), nil
}

func scanIdempotent(row rowScanner) (store.IdempotentResponse, error) {
	var r store.IdempotentResponse
	var state string
	err := row.Scan(&r.Key, &r.Fingerprint, &r.Owner, &state, &r.ChargeRef, &r.Status, &r.Header, &r.Body,
		&r.BodyOmitted, timeDest{&r.LeaseUntil}, timeDest{&r.ExpiresAt}, timeDest{&r.CreatedAt}, timeDest{&r.UpdatedAt})
	r.State = store.IdempotencyState(state)
	return r, err
}

// nonNil keeps NOT NULL byte columns out of trouble: a nil slice binds as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
