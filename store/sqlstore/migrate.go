package sqlstore

import (
	"context"
	"database/sql"
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

// loadMigrations reads NNNN_name.sql files from the root of fsys, sorted by
// version, and checks that no version appears twice. Numbers may have gaps:
// they are handed out ahead of time to changes developed side by side, so a
// build may carry migration 6 before 4 and 5 exist (each is applied once,
// whenever it first appears; see migrateTx).
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
		if m.version == 0 {
			return nil, fmt.Errorf("migrations: version 0 in %04d_%s", m.version, m.name)
		}
		if i > 0 && ms[i-1].version == m.version {
			return nil, fmt.Errorf("migrations: version %04d twice (%s, %s)", m.version, ms[i-1].name, m.name)
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
	done, err := appliedVersions(ctx, tx, ms)
	if err != nil {
		return nil, err
	}
	record := s.dialect.bind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	for _, m := range ms {
		if done[m.version] {
			continue
		}
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

// appliedVersions reads which of ms the database has applied. A version this
// build does not know means a newer build migrated the database: refused.
func appliedVersions(ctx context.Context, tx *sql.Tx, ms []migration) (map[int]bool, error) {
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if !known[v] {
			return nil, permanent{fmt.Errorf("database schema version %d is newer than this build knows (latest %d)", v, ms[len(ms)-1].version)}
		}
		done[v] = true
	}
	return done, rows.Err()
}
