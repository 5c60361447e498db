package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/big"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/postgres"
	"github.com/payper/payper/store/storetest"
)

const dsnEnv = "PAYPER_TEST_POSTGRES_DSN"

// adminDSN returns the server to test against. CI must provide one.
func adminDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn != "" {
		return dsn
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("PostgreSQL suite must run in CI: set " + dsnEnv + " (scripts/pgtest.sh go test ./store/... does)")
	}
	t.Skip(dsnEnv + " is unset; run the PostgreSQL tests with: scripts/pgtest.sh go test ./store/...")
	return ""
}

// testDatabase creates an empty, uniquely named database, drops it when
// the test ends, and returns its DSN and an admin connection.
func testDatabase(t *testing.T) (dsn, name string, admin *sql.DB) {
	t.Helper()
	adminURL := adminDSN(t)
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	name = "payper_test_" + hex.EncodeToString(suffix)
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled during cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	return withDatabase(t, adminURL, name), name, admin
}

// withDatabase points a URL or key=value DSN at another database.
func withDatabase(t *testing.T, dsn, name string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a valid URL", dsnEnv)
	}
	u.Path = "/" + name
	return u.String()
}

func openStore(t *testing.T, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	adminDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn, _, _ := testDatabase(t)
		return func(ctx context.Context, cfg storetest.Config) (store.Store, error) {
			s, err := postgres.Open(ctx, dsn, postgres.Options{Now: cfg.Now})
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	})
}

func testPayment() *store.Payment {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	return &store.Payment{
		Scheme:  "exact",
		Network: "eip155:1337",
		Asset:   "0x5fbdb2315678afecb367f032d93f642f64180aa3",
		// Accounts 0 and 1 of the public test mnemonic "test test … junk".
		Payer:       "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
		PayTo:       "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		Amount:      max,
		Nonce:       "0x" + strings.Repeat("ab", 32),
		ValidBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Method:      "GET",
		Route:       "/v1/weather",
		Resource:    "http://127.0.0.1:8080/v1/weather",
	}
}

// TestSchemaTypes checks the column types the design promises.
func TestSchemaTypes(t *testing.T) {
	dsn, _, _ := testDatabase(t)
	s := openStore(t, dsn, postgres.Options{})
	p := testPayment()
	id, err := s.ReservePayment(t.Context(), p)
	if err != nil {
		t.Fatalf("ReservePayment: %v", err)
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var amount, amountType, createdType string
	err = raw.QueryRowContext(t.Context(),
		`SELECT amount::text, pg_typeof(amount)::text, pg_typeof(created_at)::text FROM payments WHERE id = $1`, id).
		Scan(&amount, &amountType, &createdType)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if amount != p.Amount.String() || amountType != "numeric" || createdType != "timestamp with time zone" {
		t.Fatalf("amount %s (%s), created_at %s", amount, amountType, createdType)
	}
}

// TestDatabaseDown: while the database refuses connections the store
// fails closed, and once it is back the same payment is accepted.
func TestDatabaseDown(t *testing.T) {
	dsn, name, admin := testDatabase(t)
	s := openStore(t, dsn, postgres.Options{})
	ctx := t.Context()
	first := testPayment()
	if _, err := s.ReservePayment(ctx, first); err != nil {
		t.Fatalf("ReservePayment: %v", err)
	}

	mustExec(t, admin, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	mustExec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	waitNoBackends(t, admin, name)

	p := testPayment()
	p.Nonce = "0x" + strings.Repeat("cd", 32)
	_, err := s.ReservePayment(ctx, p)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ReservePayment while down: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping while down: %v, want ErrUnavailable", err)
	}
	if _, err := s.GetPayment(ctx, first.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetPayment while down: %v, want ErrUnavailable", err)
	}

	mustExec(t, admin, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	if _, err := s.ReservePayment(ctx, p); err != nil {
		t.Fatalf("ReservePayment after recovery: %v", err)
	}
	got, err := s.GetPayment(ctx, first.ID)
	if err != nil || got.Status != store.StatusReserved {
		t.Fatalf("GetPayment after recovery: %v %v", got, err)
	}
}

func mustExec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// waitNoBackends polls until terminated sessions are gone; termination is
// a signal the server acts on asynchronously.
func waitNoBackends(t *testing.T, admin *sql.DB, name string) {
	t.Helper()
	for range 500 {
		var n int
		err := admin.QueryRowContext(t.Context(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("sessions on %s did not end", name)
}
