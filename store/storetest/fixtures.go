package storetest

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// Addresses of accounts derived from the well-known public test mnemonic
// "test test test test test test test test test test test junk", written
// in mixed (checksum) case so the suite sees the store lowercase them.
const (
	testAsset    = "0x5FbDB2315678afecb367f032d93F642f64180aa3" // first contract deployed by account 0
	testAccount0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	testAccount1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	testAccount2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	testAccount3 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
)

const testNetwork = "eip155:1337"

// newPayment returns a valid payment whose nonce is derived from n, in
// upper-case hex.
func newPayment(n int) *store.Payment {
	return &store.Payment{
		Scheme:      "exact",
		Network:     testNetwork,
		Asset:       testAsset,
		Payer:       testAccount0,
		PayTo:       testAccount1,
		Amount:      big.NewInt(10_000),
		Nonce:       nonce(n),
		ValidBefore: time.Date(2030, 1, 2, 4, 0, 0, 987654321, time.FixedZone("UTC+5", 5*3600)),
		Method:      "GET",
		Route:       "/v1/weather",
		Resource:    "http://127.0.0.1:8080/v1/weather?city=Oslo",
	}
}

func nonce(n int) string {
	return fmt.Sprintf("0x%064X", 0xABCDEF00+n)
}

// expectReserved is what the store must hold right after reserving p (as
// the caller built it) with the given id at the given clock time.
func expectReserved(p store.Payment, id int64, at time.Time) store.Payment {
	p.ID = id
	p.Asset = strings.ToLower(p.Asset)
	p.Payer = strings.ToLower(p.Payer)
	p.PayTo = strings.ToLower(p.PayTo)
	p.Nonce = strings.ToLower(p.Nonce)
	p.ValidBefore = stored(p.ValidBefore)
	p.Status = store.StatusReserved
	p.TxHash, p.ErrorReason = "", ""
	p.CreatedAt, p.UpdatedAt = stored(at), stored(at)
	return p
}

func mustReserve(t *testing.T, s store.Store, p *store.Payment) int64 {
	t.Helper()
	id, err := s.ReservePayment(t.Context(), p)
	if err != nil {
		t.Fatalf("ReservePayment(nonce %s): %v", p.Nonce, err)
	}
	return id
}

func mustGet(t *testing.T, s store.Store, id int64) *store.Payment {
	t.Helper()
	p, err := s.GetPayment(t.Context(), id)
	if err != nil {
		t.Fatalf("GetPayment(%d): %v", id, err)
	}
	return p
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// checkPayment compares every field and requires UTC times.
func checkPayment(t *testing.T, got *store.Payment, want store.Payment) {
	t.Helper()
	if got == nil {
		t.Fatalf("payment is nil, want id %d", want.ID)
	}
	var diffs []string
	field := func(name string, g, w any) {
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID, want.ID)
	field("Scheme", got.Scheme, want.Scheme)
	field("Network", got.Network, want.Network)
	field("Asset", got.Asset, want.Asset)
	field("Payer", got.Payer, want.Payer)
	field("PayTo", got.PayTo, want.PayTo)
	field("Nonce", got.Nonce, want.Nonce)
	field("Method", got.Method, want.Method)
	field("Route", got.Route, want.Route)
	field("Resource", got.Resource, want.Resource)
	field("Status", got.Status, want.Status)
	field("TxHash", got.TxHash, want.TxHash)
	field("ErrorReason", got.ErrorReason, want.ErrorReason)
	if got.Amount == nil || got.Amount.Cmp(want.Amount) != 0 {
		diffs = append(diffs, fmt.Sprintf("Amount = %v, want %v", got.Amount, want.Amount))
	}
	times := []struct {
		name      string
		got, want time.Time
	}{
		{"ValidBefore", got.ValidBefore, want.ValidBefore},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	}
	for _, tm := range times {
		if !tm.got.Equal(tm.want) || tm.got.Location() != time.UTC {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v in UTC", tm.name, tm.got, tm.want))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("payment %d differs:\n  %s", want.ID, strings.Join(diffs, "\n  "))
	}
}

// ids lists the ids of ps in order.
func ids(ps []store.Payment) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func checkIDs(t *testing.T, what string, got []store.Payment, want ...int64) {
	t.Helper()
	g := ids(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("%s: ids %v, want %v", what, g, want)
	}
}
