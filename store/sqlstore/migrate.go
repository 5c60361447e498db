package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads NNNN_name.sql files from the root of fsys and checks
// they are numbered 1, 2, 3… so a missing or doubled file fails loudly.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("migrations: unexpected entry %q", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		version, _ := strconv.Atoi(m[1])
		ms = append(ms, migration{version: version, name: m[2], sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: expected version %d, found %04d_%s", i+1, m.version, m.name)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migrations: none found")
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// migrate applies pending migrations in one transaction, so a crash leaves
// the schema either before or after the whole set, and a second process
// starting at the same time waits and then finds nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect.Migrations)
	if err != nil {
		return fmt.Errorf("%s: %w", s.dialect.Name, err)
	}
	var applied []migration
	err = s.withRetry(ctx, func() error {
		var err error
		applied, err = s.migrateTx(ctx, ms)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", s.dialect.Name, err)
	}
	for _, m := range applied {
		s.log.InfoContext(ctx, "applied schema migration", "backend", s.dialect.Name, "version", m.version, "name", m.name)
	}
	return nil
}

func (s *Store) migrateTx(ctx context.Context, ms []migration) (applied []migration, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if s.dialect.LockMigrations != nil {
		if err := s.dialect.LockMigrations(ctx, tx); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, err
	}
	if current > len(ms) {
		return nil, permanent{fmt.Errorf("database schema version %d is newer than this build knows (%d)", current, len(ms))}
	}
	record := s.dialect.bind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		stamp := s.timestamp().Format(time.RFC3339Nano)
		if _, err := tx.ExecContext(ctx, record, m.version, m.name, stamp); err != nil {
			return nil, err
		}
		applied = append(applied, m)
	}
	return applied, tx.Commit()
}
