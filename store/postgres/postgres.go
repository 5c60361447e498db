// Package postgres is the store backend for several gateway replicas
// sharing one PostgreSQL database, through pgx's database/sql driver.
//
// Replay protection and state changes are single statements guarded by a
// unique index and compare-and-set conditions, so they hold across
// replicas without explicit locks. Migrations run on Open inside one
// transaction under an advisory lock, so replicas may start together.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune Open. The zero value is usable.
type Options struct {
	// Now stamps CreatedAt and UpdatedAt; nil means time.Now.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// MaxConns caps open connections; 0 means 10.
	MaxConns int
}

// Store is a store.Store backed by PostgreSQL.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// migrationLockKey identifies the advisory lock held while migrating
// ("payper" in ASCII).
const migrationLockKey int64 = 0x706179706572

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string) and applies pending migrations.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the password; do not echo it.
		return nil, fmt.Errorf("postgres: %w: cannot parse the connection string", store.ErrInvalid)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s/%s: %w", cfg.Host, cfg.Database, mapError(err))
	}
	s, err := sqlstore.New(ctx, sqlstore.Config{
		Write:   db,
		Dialect: dialect(migrations),
		Now:     opts.Now,
		Logger:  opts.Logger,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: s}, nil
}

func dialect(migrations fs.FS) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:           "postgres",
		NumberedParams: true,
		TimeValue:      func(t time.Time) any { return t },
		MapError:       mapError,
		Retryable:      retryable,
		Migrations:     migrations,
		LockMigrations: lockMigrations,
		ForUpdate:      " FOR UPDATE",
	}
}

// lockMigrations takes a transaction-scoped advisory lock: a second replica
// blocks here until the first commits, then sees the migrations applied.
func lockMigrations(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey)
	return err
}
