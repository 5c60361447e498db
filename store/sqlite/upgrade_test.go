package sqlite_test

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// TestUpgradeKeepsPayments: migration 6 rebuilds the payments table (SQLite cannot change a CHECK
// constraint in place). A database at version 3 with payments in it keeps them, their ids, the
// replay guard and the id sequence.
func TestUpgradeKeepsPayments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payper.db")
	raw := rawDB(t, path)
	for _, name := range []string{"0001_payments.sql", "0002_channels.sql", "0003_refund_hold.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	const nonce = "0x00000000000000000000000000000000000000000000000000000000000000aa"
	const hash = "0x00000000000000000000000000000000000000000000000000000000000000bb"
	stmts := []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'payments', 'x'), (2, 'channels', 'x'), (3, 'refund_hold', 'x')`,
		`INSERT INTO payments (id, scheme, network, asset, payer, pay_to, amount, nonce, valid_before, method, route,
			resource, status, tx_hash, error_reason, created_at, updated_at)
		VALUES (41, 'exact', 'eip155:1337', '0x5fbdb2315678afecb367f032d93f642f64180aa3',
			'0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', '1000',
			'` + nonce + `', 1700000000000000, 'GET', '/v1/quote', '/v1/quote', 'settled', '` + hash + `', '',
			1700000000000000, 1700000000000000)`,
	}
	for _, q := range stmts {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	s := openStore(t, path, sqlite.Options{})
	ctx := t.Context()
	p, err := s.GetPayment(ctx, 41)
	if err != nil || p.Status != store.StatusSettled || p.TxHash != hash || p.Amount.Int64() != 1000 {
		t.Fatalf("payment after the upgrade: %+v, %v", p, err)
	}
	if err := s.MarkVanished(ctx, 41, "transaction_vanished"); err != nil {
		t.Fatalf("MarkVanished after the upgrade: %v", err)
	}
	replay := &store.Payment{Scheme: "exact", Network: p.Network, Asset: p.Asset, Payer: p.Payer, PayTo: p.PayTo,
		Amount: big.NewInt(1000), Nonce: nonce, ValidBefore: time.Unix(1700000000, 0), Method: "GET", Route: "/", Resource: "/"}
	if _, err := s.ReservePayment(ctx, replay); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("replay of the upgraded payment's authorization: %v, want ErrDuplicate", err)
	}
	fresh := *replay
	fresh.Nonce = "0x00000000000000000000000000000000000000000000000000000000000000cc"
	if id, err := s.ReservePayment(ctx, &fresh); err != nil || id <= 41 {
		t.Fatalf("new payment after the upgrade: id %d, %v; want an id above 41", id, err)
	}
}
