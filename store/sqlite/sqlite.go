// Package sqlite is the embedded store backend: one SQLite file opened with
// the pure-Go modernc.org/sqlite driver, in WAL mode.
//
// All writes of one Store go through a single connection, so goroutines of
// one process queue in Go instead of contending for SQLite's file lock.
// Several Stores or processes on the same file still contend; busy_timeout
// and a bounded retry absorb that, and whatever remains surfaces as
// store.ErrUnavailable, never as a raw "database is locked".
//
// Every write is durable before it is acknowledged. Most commit with
// synchronous=FULL. Channel charges, the hot path, commit in groups with
// synchronous=NORMAL and are answered after a separate sync of the log
// (flush.go), so the next group commits while the disk works.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

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
	// BusyTimeout is how long one statement waits for another process's
	// write lock before failing; 0 means 5s.
	BusyTimeout time.Duration
	// MaxReaders caps the read connections; 0 means 4.
	MaxReaders int
}

// Store is a store.Store backed by one SQLite file.
type Store struct {
	*sqlstore.Store
	write *sql.DB // the single writer connection, for tests
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, walFlusher)
}

// open is Open with the charge groups' flush chosen by the caller (tests wrap it).
func open(ctx context.Context, path string, opts Options, flusher func(dbPath string) func() error) (*Store, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: %w: need a plain file path, got %q", store.ErrInvalid, path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.MaxReaders <= 0 {
		opts.MaxReaders = 4
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}

	// The writer connects first: it creates the file and switches it to
	// WAL before any reader opens it.
	write, err := openPool(writerDSN(path, opts.BusyTimeout))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	if err := connect(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, mapError(err))
	}
	read, err := openPool(readerDSN(path, opts.BusyTimeout))
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(opts.MaxReaders)
	read.SetMaxIdleConns(opts.MaxReaders)

	s, err := sqlstore.New(ctx, sqlstore.Config{
		Write:   write,
		Read:    read,
		Dialect: dialect(migrations),
		Now:     opts.Now,
		Logger:  opts.Logger,
		GroupSync: &sqlstore.GroupSync{
			Relax:   "PRAGMA synchronous = NORMAL",
			Restore: "PRAGMA synchronous = FULL",
			Flush:   flusher(path),
		},
	})
	if err != nil {
		read.Close()
		write.Close()
		return nil, err
	}
	return &Store{Store: s, write: write}, nil
}

// connect makes the writer's first connection. Switching a new file to WAL
// needs an exclusive lock, and SQLite answers SQLITE_BUSY there without
// waiting for busy_timeout, so processes starting together retry a few
// times.
func connect(ctx context.Context, db *sql.DB) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := db.PingContext(ctx)
		if err == nil || attempt == connectAttempts || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

const connectAttempts = 10

func openPool(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return db, nil
}

// writerDSN: busy_timeout is set before the other pragmas so they wait for
// locks where SQLite lets them; BEGIN IMMEDIATE takes the write lock at the
// start of a transaction, so migrations of two processes serialise.
func writerDSN(path string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

func readerDSN(path string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "query_only(1)")
	return path + "?" + q.Encode()
}

func dialect(migrations fs.FS) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "sqlite",
		TimeValue:  func(t time.Time) any { return t.UnixMicro() },
		MapError:   mapError,
		Retryable:  retryable,
		Migrations: migrations,
		// One writer connection: concurrent charges share a commit instead of queueing for it.
		GroupCharges: true,
	}
}
