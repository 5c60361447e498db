package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

func testFindPayment(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	p := newPayment(1)
	input := *p
	id := mustReserve(t, s, p)
	want := expectReserved(input, id, h.clock.Now())

	for _, key := range [][3]string{
		{testAsset, testAccount0, nonce(1)},
		{strings.ToLower(testAsset), strings.ToLower(testAccount0), strings.ToLower(nonce(1))},
		{strings.ToUpper(testAsset), strings.ToUpper(testAccount0), strings.ToUpper(nonce(1))},
	} {
		got, err := s.FindPayment(ctx, testNetwork, key[0], key[1], key[2])
		must(t, "FindPayment "+key[1], err)
		checkPayment(t, got, want)
	}

	misses := map[string][4]string{
		"other network": {"eip155:8453", testAsset, testAccount0, nonce(1)},
		"other asset":   {testNetwork, testAccount3, testAccount0, nonce(1)},
		"other payer":   {testNetwork, testAsset, testAccount2, nonce(1)},
		"other nonce":   {testNetwork, testAsset, testAccount0, nonce(2)},
	}
	for name, k := range misses {
		_, err := s.FindPayment(ctx, k[0], k[1], k[2], k[3])
		wantErr(t, name, err, store.ErrNotFound)
	}

	must(t, "ReleasePayment", s.ReleasePayment(ctx, id, reasonReleased))
	_, err := s.FindPayment(ctx, testNetwork, testAsset, testAccount0, nonce(1))
	wantErr(t, "after release", err, store.ErrNotFound)

	again := mustReserve(t, s, newPayment(1))
	got, err := s.FindPayment(ctx, testNetwork, testAsset, testAccount0, nonce(1))
	must(t, "FindPayment after re-reserving", err)
	if got.ID != again {
		t.Fatalf("found payment %d, want the live one %d", got.ID, again)
	}
}

func testListPayments(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	add := func(n int, mutate func(*store.Payment)) int64 {
		h.clock.Advance(time.Second)
		p := newPayment(n)
		if mutate != nil {
			mutate(p)
		}
		return mustReserve(t, s, p)
	}
	byB := func(p *store.Payment) { p.Payer = testAccount2 }
	p1 := add(1, nil)
	p2 := add(2, byB)
	p3 := add(3, nil)
	must(t, "settle", s.MarkSettled(ctx, p3, txHash(3)))
	p4 := add(4, nil)
	must(t, "release", s.ReleasePayment(ctx, p4, reasonReleased))
	p5 := add(5, byB)
	must(t, "fail", s.MarkFailed(ctx, p5, reasonFailed))
	p6 := add(6, func(p *store.Payment) { p.Network, p.PayTo = "eip155:8453", testAccount3 })

	cases := []struct {
		name   string
		filter store.PaymentFilter
		want   []int64
	}{
		{"everything", store.PaymentFilter{}, []int64{p6, p5, p4, p3, p2, p1}},
		{"payer", store.PaymentFilter{Payer: testAccount0}, []int64{p6, p4, p3, p1}},
		{"payer upper-case", store.PaymentFilter{Payer: strings.ToUpper(testAccount2)}, []int64{p5, p2}},
		{"status", store.PaymentFilter{Status: store.StatusSettled}, []int64{p3}},
		{"payer and status", store.PaymentFilter{Payer: testAccount0, Status: store.StatusReserved}, []int64{p6, p1}},
		{"network", store.PaymentFilter{Network: "eip155:8453"}, []int64{p6}},
		{"payTo", store.PaymentFilter{PayTo: strings.ToLower(testAccount1)}, []int64{p5, p4, p3, p2, p1}},
		{"limit", store.PaymentFilter{Limit: 2}, []int64{p6, p5}},
		{"next page", store.PaymentFilter{Limit: 2, BeforeID: p5}, []int64{p4, p3}},
		{"last page", store.PaymentFilter{Limit: 2, BeforeID: p2}, []int64{p1}},
		{"no match", store.PaymentFilter{Payer: testAccount3}, []int64{}},
	}
	for _, tc := range cases {
		got, err := s.ListPayments(ctx, tc.filter)
		must(t, "ListPayments "+tc.name, err)
		if got == nil {
			t.Fatalf("%s: nil slice, want empty", tc.name)
		}
		checkIDs(t, tc.name, got, tc.want...)
	}

	// Records come back whole.
	got, err := s.ListPayments(ctx, store.PaymentFilter{Status: store.StatusSettled})
	must(t, "ListPayments", err)
	checkPayment(t, &got[0], *mustGet(t, s, p3))
}

func testListPaymentsDefaultLimit(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	const n = store.DefaultListLimit + 1
	var last int64
	for i := range n {
		last = mustReserve(t, s, newPayment(i))
	}
	got, err := s.ListPayments(ctx, store.PaymentFilter{})
	must(t, "ListPayments", err)
	if len(got) != store.DefaultListLimit || got[0].ID != last {
		t.Fatalf("default limit: %d payments starting at %d, want %d starting at %d",
			len(got), got[0].ID, store.DefaultListLimit, last)
	}
	got, err = s.ListPayments(ctx, store.PaymentFilter{Limit: store.MaxListLimit * 10})
	must(t, "ListPayments", err)
	if len(got) != n {
		t.Fatalf("large limit: %d payments, want %d", len(got), n)
	}
}

func testUnfinishedPayments(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	got, err := s.UnfinishedPayments(ctx)
	must(t, "UnfinishedPayments on empty store", err)
	checkIDs(t, "empty store", got)

	reserved := mustReserve(t, s, newPayment(1))
	submitted := mustReserve(t, s, newPayment(2))
	must(t, "submit", s.MarkSubmitted(ctx, submitted, txHash(2)))
	settled := mustReserve(t, s, newPayment(3))
	must(t, "settle", s.MarkSettled(ctx, settled, txHash(3)))
	failed := mustReserve(t, s, newPayment(4))
	must(t, "fail", s.MarkFailed(ctx, failed, reasonFailed))
	released := mustReserve(t, s, newPayment(5))
	must(t, "release", s.ReleasePayment(ctx, released, reasonReleased))
	later := mustReserve(t, s, newPayment(6))

	got, err = s.UnfinishedPayments(ctx)
	must(t, "UnfinishedPayments", err)
	checkIDs(t, "unfinished, oldest first", got, reserved, submitted, later)
	if got[1].Status != store.StatusSubmitted || got[1].TxHash != txHash(2) {
		t.Fatalf("submitted payment came back as %s %q", got[1].Status, got[1].TxHash)
	}
}

// testRecentSettlements: settled and vanished payments updated since a time, newest first, a
// page at a time; nothing else.
func testRecentSettlements(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	got, err := s.RecentSettlements(ctx, time.Time{}, 0, 0)
	must(t, "RecentSettlements on empty store", err)
	checkIDs(t, "empty store", got)

	settle := func(n int) int64 {
		id := mustReserve(t, s, newPayment(n))
		must(t, "settle", s.MarkSettled(ctx, id, txHash(n)))
		return id
	}
	old := settle(1)
	h.clock.Advance(time.Hour)
	since := h.clock.Now()
	first := settle(2) // settled exactly at since: included
	h.clock.Advance(time.Second)
	vanished := settle(3)
	must(t, "vanish", s.MarkVanished(ctx, vanished, reasonVanished))
	mustReserve(t, s, newPayment(4)) // reserved
	submitted := mustReserve(t, s, newPayment(5))
	must(t, "submit", s.MarkSubmitted(ctx, submitted, txHash(5)))
	failed := mustReserve(t, s, newPayment(6))
	must(t, "fail", s.MarkFailed(ctx, failed, reasonFailed))
	last := settle(7)
	// An old settlement that vanished recently is recent again.
	h.clock.Advance(time.Second)
	must(t, "vanish the old one", s.MarkVanished(ctx, old, reasonVanished))

	cases := []struct {
		name     string
		since    time.Time
		beforeID int64
		limit    int
		want     []int64
	}{
		{"all since", since, 0, 0, []int64{last, vanished, first, old}},
		{"from the start of time", time.Time{}, 0, 0, []int64{last, vanished, first, old}},
		{"after the window", h.clock.Now().Add(time.Microsecond), 0, 0, []int64{}},
		{"first page", since, 0, 2, []int64{last, vanished}},
		{"next page", since, vanished, 2, []int64{first, old}},
		{"past the end", since, old, 2, []int64{}},
	}
	for _, tc := range cases {
		got, err := s.RecentSettlements(ctx, tc.since, tc.beforeID, tc.limit)
		must(t, "RecentSettlements "+tc.name, err)
		if got == nil {
			t.Fatalf("%s: nil slice, want empty", tc.name)
		}
		checkIDs(t, tc.name, got, tc.want...)
	}
	// Records come back whole.
	got, err = s.RecentSettlements(ctx, since, last, 1)
	must(t, "RecentSettlements", err)
	checkPayment(t, &got[0], *mustGet(t, s, vanished))
	if got[0].Status != store.StatusVanished || got[0].ErrorReason != reasonVanished {
		t.Fatalf("vanished payment came back as %s %q", got[0].Status, got[0].ErrorReason)
	}
}
