package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/store"
)

// Config assembles a Store.
type Config struct {
	// Write runs every statement that changes data, and the migrations.
	Write *sql.DB
	// Read runs queries; nil means Write. The Store closes both.
	Read    *sql.DB
	Dialect Dialect
	// Now stamps CreatedAt and UpdatedAt; nil means time.Now.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// GroupSync, for a dialect that groups charges, takes the disk flush out of the charge
	// committer's path; nil keeps the flush in each commit.
	GroupSync *GroupSync
}

// GroupSync lets grouped charges commit without waiting for the disk and be made durable by a
// separate flush before anyone is answered.
type GroupSync struct {
	// Relax runs on the writer connection before a group's transaction, Restore after it: for
	// SQLite, PRAGMA synchronous=NORMAL and back to FULL.
	Relax, Restore string
	// Flush makes every transaction committed before the call durable (for SQLite in WAL mode:
	// fdatasync of the -wal file). It runs beside the committer, never at the same time as
	// another Flush.
	Flush func() error
}

// Store implements store.Store over database/sql.
type Store struct {
	write   *sql.DB
	read    *sql.DB
	dialect Dialect
	now     func() time.Time
	log     *slog.Logger
	closed  atomic.Bool
	q       queries
	cq      channelQueries
	lq      leaseQueries
	aq      asyncQueries
	charges *chargeGroup // nil unless the dialect groups charges

	// Payment-identifier records: relaxed writes and their statements.
	iq     idempotencyQueries
	relax  *GroupSync  // for writes that may skip the disk flush; nil: every write is flushed
	stmts  statements  // prepared write statements
	writes *writeGroup // relaxed writes committed together; nil without relax
	// durable commits concurrent payment writes together, one flush for all; nil without relax
	// (each write then commits and syncs on its own).
	durable *writeGroup
}

var errClosed = Unavailable(errors.New("store is closed"))

// New applies pending migrations and returns a ready Store. On error the
// caller still owns (and must close) the pools.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Write == nil {
		return nil, fmt.Errorf("sqlstore: no database")
	}
	if err := cfg.Dialect.validate(); err != nil {
		return nil, err
	}
	if g := cfg.GroupSync; g != nil && (g.Flush == nil || g.Relax == "" || g.Restore == "") {
		return nil, fmt.Errorf("sqlstore: incomplete GroupSync")
	}
	s := &Store{
		write:   cfg.Write,
		read:    cfg.Read,
		dialect: cfg.Dialect,
		now:     cfg.Now,
		log:     cfg.Logger,
	}
	if s.read == nil {
		s.read = s.write
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.q = buildQueries(&s.dialect)
	s.cq = buildChannelQueries(&s.dialect)
	s.lq = buildLeaseQueries(&s.dialect)
	s.aq = buildAsyncQueries(&s.dialect)
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.iq = buildIdempotencyQueries(&s.dialect)
	s.prepareTxStatements(ctx)
	if s.dialect.GroupCharges {
		s.charges = newChargeGroup(s, cfg.GroupSync)
		s.relax = cfg.GroupSync
		if s.relax != nil {
			s.writes = newWriteGroup(s, nil)
			s.durable = newWriteGroup(s, serialFlush(s.relax.Flush))
		}
	}
	return s, nil
}

// Ping checks that both pools reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: ping: %w", s.dialect.Name, s.dialect.MapError(err))
	}
	if s.read != s.write {
		if err := s.read.PingContext(ctx); err != nil {
			return fmt.Errorf("%s: ping: %w", s.dialect.Name, s.dialect.MapError(err))
		}
	}
	return nil
}

// Close closes the pools. It is safe to call more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.charges != nil {
		s.charges.close()
	}
	if s.durable != nil {
		s.durable.close()
	}
	if s.writes != nil {
		s.writes.close()
	}
	s.stmts.close()
	var errs []error
	if s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}

// timestamp is the store's view of "now": UTC, microsecond precision (the
// finest both backends keep).
func (s *Store) timestamp() time.Time {
	return normalizeTime(s.now())
}

func normalizeTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// retryPolicy spaces retries of a statement that met contention: 10 ms doubling, with jitter.
var retryPolicy = backoff.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// Bounds for retrying statements that failed on contention. Each SQLite
// attempt already waits up to its busy timeout, so a few are enough.
const (
	maxAttempts = 4
)

// withRetry runs op until it succeeds, fails with an error the dialect does
// not consider retryable, or runs out of attempts. The returned error is
// mapped to the store sentinels; sql.ErrNoRows passes through unchanged.
func (s *Store) withRetry(ctx context.Context, op func() error) error {
	if s.closed.Load() {
		return errClosed
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = op()
		var p permanent
		if err == nil || errors.Is(err, sql.ErrNoRows) || errors.As(err, &p) {
			return err
		}
		if attempt == maxAttempts || !s.dialect.Retryable(err) {
			break
		}
		s.log.DebugContext(ctx, "retrying statement", "backend", s.dialect.Name, "attempt", attempt, "err", err)
		// Jittered, so that replicas that collided do not collide again in step.
		timer := time.NewTimer(retryPolicy.Delay(attempt))
		select {
		case <-ctx.Done():
			timer.Stop()
			return Unavailable(ctx.Err())
		case <-timer.C:
		}
	}
	return s.dialect.MapError(err)
}

// permanent marks an error raised by this package rather than the driver:
// withRetry neither retries nor maps it.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

var _ store.Store = (*Store)(nil)
