package sqlite_test

import (
	"database/sql"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

func testPayment(nonceByte string) *store.Payment {
	return &store.Payment{
		Scheme:  "exact",
		Network: "eip155:1337",
		Asset:   "0x5fbdb2315678afecb367f032d93f642f64180aa3",
		// Accounts 0 and 1 of the public test mnemonic "test test … junk".
		Payer:       "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
		PayTo:       "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		Amount:      new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)),
		Nonce:       "0x" + strings.Repeat(nonceByte, 32),
		ValidBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Method:      "GET",
		Route:       "/v1/weather",
		Resource:    "http://127.0.0.1:8080/v1/weather",
	}
}

func openStore(t *testing.T, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestWriteLockHeldElsewhere: another process holds the write lock past
// the busy timeout. Writers get ErrUnavailable (a 503), readers carry on
// (WAL), and once the lock is gone the same reservation succeeds.
func TestWriteLockHeldElsewhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payper.db")
	s := openStore(t, path, sqlite.Options{BusyTimeout: 20 * time.Millisecond})
	ctx := t.Context()
	first := testPayment("aa")
	if _, err := s.ReservePayment(ctx, first); err != nil {
		t.Fatalf("ReservePayment: %v", err)
	}

	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take write lock: %v", err)
	}

	second := testPayment("bb")
	_, err = s.ReservePayment(ctx, second)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ReservePayment under a foreign lock: %v, want ErrUnavailable", err)
	}
	t.Logf("under a foreign lock: %v", err)
	if err := s.MarkSubmitted(ctx, first.ID, "0x"+strings.Repeat("11", 32)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("MarkSubmitted under a foreign lock: %v, want ErrUnavailable", err)
	}
	if got, err := s.GetPayment(ctx, first.ID); err != nil || got.Status != store.StatusReserved {
		t.Fatalf("GetPayment under a foreign lock: %v, %v", got, err)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("release write lock: %v", err)
	}
	if _, err := s.ReservePayment(ctx, second); err != nil {
		t.Fatalf("ReservePayment after the lock: %v", err)
	}
}

func TestOpenFailures(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		want       error
	}{
		{"empty path", "", store.ErrInvalid},
		{"query in path", filepath.Join(dir, "x.db?mode=ro"), store.ErrInvalid},
		{"memory", ":memory:", store.ErrInvalid},
		{"directory", dir, store.ErrUnavailable},
		{"missing parent", filepath.Join(dir, "no", "such", "x.db"), store.ErrUnavailable},
		{"not a database", garbage, store.ErrUnavailable},
	}
	for _, tc := range cases {
		s, err := sqlite.Open(t.Context(), tc.path, sqlite.Options{})
		if !errors.Is(err, tc.want) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: Open(%q) = %v, want %v", tc.name, tc.path, err, tc.want)
		}
	}
}

// TestFileFormat checks what the design promises about the file: WAL,
// amounts as decimal text, and the schema version.
func TestFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payper.db")
	s := openStore(t, path, sqlite.Options{})
	p := testPayment("aa")
	id, err := s.ReservePayment(t.Context(), p)
	if err != nil {
		t.Fatalf("ReservePayment: %v", err)
	}
	raw := rawDB(t, path)
	var mode, kind, amount string
	var version int
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := raw.QueryRow("SELECT typeof(amount), amount FROM payments WHERE id = ?", id).Scan(&kind, &amount); err != nil {
		t.Fatal(err)
	}
	if kind != "text" || amount != p.Amount.String() {
		t.Fatalf("amount stored as %s %q, want text %q", kind, amount, p.Amount)
	}
	if err := raw.QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version < 1 {
		t.Fatalf("schema version %d, %v", version, err)
	}
}

// TestNewerSchemaRefused: an older build must not run against a schema it
// does not know.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payper.db")
	s := openStore(t, path, sqlite.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}
