// Package pgtest gives a test a fresh, empty PostgreSQL database on the throwaway cluster that
// `make test` starts (scripts/pgtest.sh exports its address), dropped when the test ends. Without
// a cluster the test is skipped, except in CI, where the PostgreSQL suites must run.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Env names the cluster's administrative DSN.
const Env = "PAYPER_TEST_POSTGRES_DSN"

// Database creates a database whose name starts with prefix and returns its DSN.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	admin := os.Getenv(Env)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(Env + " is unset: the PostgreSQL suites must run in CI")
		}
		t.Skip("no PostgreSQL: run the test through scripts/pgtest.sh")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := prefix + "_" + hex.EncodeToString(suffix)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if db, err := sql.Open("pgx", admin); err == nil {
			_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			db.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", Env, err)
	}
	u.Path = "/" + name
	return u.String()
}
