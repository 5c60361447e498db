package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	_ "modernc.org/sqlite"
)

// TestMigrationFillingAGapIsApplied: a database migrated with versions 1 and 3 gets version 2 once
// a build carries it, and a build that lacks a version the database has is refused.
func TestMigrationFillingAGapIsApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	one := file("CREATE TABLE a (x INTEGER);")
	two := file("CREATE TABLE b (x INTEGER);")
	three := file("CREATE TABLE c (x INTEGER);")

	open := func(migrations fstest.MapFS) error {
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(context.Background(), Config{Write: db, Dialect: Dialect{
			Name: "test", Migrations: migrations,
			TimeValue: func(t time.Time) any { return t.UnixMicro() },
			MapError:  func(err error) error { return err },
			Retryable: func(error) bool { return false },
		}})
		if err != nil {
			db.Close()
			return err
		}
		return s.Close()
	}
	if err := open(fstest.MapFS{"0001_a.sql": one, "0003_c.sql": three}); err != nil {
		t.Fatalf("first build: %v", err)
	}
	if err := open(fstest.MapFS{"0001_a.sql": one, "0002_b.sql": two, "0003_c.sql": three}); err != nil {
		t.Fatalf("build with the gap filled: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions string
	if err := db.QueryRow(`SELECT group_concat(version, ',') FROM (SELECT version FROM schema_migrations ORDER BY version)`).Scan(&versions); err != nil || versions != "1,2,3" {
		t.Fatalf("applied versions %q (%v), want 1,2,3", versions, err)
	}
	if _, err := db.Exec(`INSERT INTO b VALUES (1)`); err != nil {
		t.Fatalf("table of the gap-filling migration: %v", err)
	}

	err = open(fstest.MapFS{"0001_a.sql": one, "0002_b.sql": two})
	var refused permanent
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("a build without migration 3: %v", err)
	}
}
