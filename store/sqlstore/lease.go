package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payper/payper/store"
)

type leaseQueries struct{ acquire, release string }

func buildLeaseQueries(d *Dialect) leaseQueries {
	return leaseQueries{
		// One statement: the row is taken when it is free, lapsed or already ours; otherwise no
		// row comes back.
		acquire: d.bind(`INSERT INTO leases (name, holder, until_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
WHERE leases.holder = excluded.holder OR leases.until_at <= ?
RETURNING holder`),
		release: d.bind(`DELETE FROM leases WHERE name = ? AND holder = ?`),
	}
}

// AcquireLease implements store.LeaseStore.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("%w: a lease needs a name, a holder and a positive duration", store.ErrInvalid)
	}
	now := s.timestamp()
	var got string
	err := s.withRetry(ctx, func() error {
		return s.write.QueryRowContext(ctx, s.lq.acquire, name, holder, s.dialect.TimeValue(now.Add(ttl)), s.dialect.TimeValue(now)).Scan(&got)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return true, nil
}

// ReleaseLease implements store.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.withRetry(ctx, func() error {
		_, err := s.write.ExecContext(ctx, s.lq.release, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
