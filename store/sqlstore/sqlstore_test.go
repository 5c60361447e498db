package sqlstore

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/payper/payper/store"
)

func TestLoadMigrations(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	good := fstest.MapFS{
		"0002_channels.sql": file("CREATE TABLE b (x INTEGER);"),
		"0001_payments.sql": file("CREATE TABLE a (x INTEGER);"),
	}
	ms, err := loadMigrations(good)
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	if len(ms) != 2 || ms[0].version != 1 || ms[0].name != "payments" || ms[1].version != 2 || !strings.Contains(ms[1].sql, "TABLE b") {
		t.Fatalf("loaded %+v", ms)
	}

	// Numbers handed out to changes developed side by side may leave gaps.
	gap, err := loadMigrations(fstest.MapFS{"0006_f.sql": file(""), "0001_a.sql": file(""), "0003_c.sql": file("")})
	if err != nil || len(gap) != 3 || gap[0].version != 1 || gap[1].version != 3 || gap[2].version != 6 {
		t.Fatalf("with gaps: %+v, %v", gap, err)
	}

	bad := map[string]fstest.MapFS{
		"empty":      {},
		"version 0":  {"0000_a.sql": file("")},
		"duplicate":  {"0001_a.sql": file(""), "0001_b.sql": file("")},
		"stray file": {"0001_a.sql": file(""), "README.md": file("")},
		"bad name":   {"1_a.sql": file("")},
	}
	for name, fsys := range bad {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBind(t *testing.T) {
	numbered := Dialect{NumberedParams: true}
	plain := Dialect{}
	q := "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"
	if got := numbered.bind(q); got != "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)" {
		t.Errorf("numbered: %s", got)
	}
	if got := plain.bind(q); got != q {
		t.Errorf("plain: %s", got)
	}
}

func TestNormalizePayment(t *testing.T) {
	in := &store.Payment{
		Scheme: "exact", Network: "eip155:1", Asset: "0xABC", Payer: "0XDEF", PayTo: "0xAbC1",
		Amount: big.NewInt(5), Nonce: "0xFF",
		ValidBefore: time.Date(2030, 1, 1, 5, 0, 0, 1999, time.FixedZone("X", 3600)),
	}
	got, err := normalizePayment(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Asset != "0xabc" || got.Payer != "0xdef" || got.PayTo != "0xabc1" || got.Nonce != "0xff" {
		t.Errorf("hex not lowered: %+v", got)
	}
	want := time.Date(2030, 1, 1, 4, 0, 0, 1000, time.UTC)
	if !got.ValidBefore.Equal(want) || got.ValidBefore.Location() != time.UTC {
		t.Errorf("ValidBefore = %v, want %v", got.ValidBefore, want)
	}
	if in.Asset != "0xABC" {
		t.Errorf("input modified")
	}
	huge := *in
	huge.Amount = new(big.Int).Lsh(big.NewInt(1), 256)
	if _, err := normalizePayment(&huge); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("2^256: %v", err)
	}
}

func TestScanners(t *testing.T) {
	var n *big.Int
	for _, src := range []any{"115792089237316195423570985008687907853269984665640564039457584007913129639935",
		[]byte("115792089237316195423570985008687907853269984665640564039457584007913129639935")} {
		if err := (amountDest{&n}).Scan(src); err != nil || n.BitLen() != 256 {
			t.Errorf("amount from %T: %v %v", src, n, err)
		}
	}
	for _, src := range []any{"12.5", "", "1e6", nil, 1.5} {
		if err := (amountDest{&n}).Scan(src); err == nil {
			t.Errorf("amount from %#v: no error", src)
		}
	}
	var tm time.Time
	if err := (timeDest{&tm}).Scan(int64(1_700_000_000_123_456)); err != nil ||
		!tm.Equal(time.UnixMicro(1_700_000_000_123_456)) || tm.Location() != time.UTC {
		t.Errorf("time from micros: %v %v", tm, err)
	}
	if err := (timeDest{&tm}).Scan("2030-01-01"); err == nil {
		t.Errorf("time from text: no error")
	}
}
