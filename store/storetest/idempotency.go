package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

const (
	idemKey   = "pay_7d5d747be160e280504c099d984bcfe0"
	idemPrint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	idemLease = 30 * time.Second
	idemTTL   = 24 * time.Hour
)

func claim(owner string) store.IdempotencyClaim {
	return store.IdempotencyClaim{Key: idemKey, Fingerprint: idemPrint, Owner: owner, Lease: idemLease, TTL: idemTTL, Relaxed: true}
}

func mustClaim(t *testing.T, s store.Store, c store.IdempotencyClaim, wantClaimed bool) *store.IdempotentResponse {
	t.Helper()
	r, claimed, err := s.ClaimIdempotencyKey(t.Context(), c)
	must(t, "ClaimIdempotencyKey", err)
	if claimed != wantClaimed {
		t.Fatalf("claim by %s: claimed %v, want %v (held by %s in %s)", c.Owner, claimed, wantClaimed, r.Owner, r.State)
	}
	return r
}

func mustGetIdem(t *testing.T, s store.Store, key string) *store.IdempotentResponse {
	t.Helper()
	r, err := s.GetIdempotentResponse(t.Context(), key)
	must(t, "GetIdempotentResponse", err)
	return r
}

// testIdempotencyRoundTrip: the first claim holds the key; later claims get the holder back, and
// the holder's response is kept byte for byte.
func testIdempotencyRoundTrip(t *testing.T, h *harness) {
	s := h.store(t)
	first := mustClaim(t, s, claim("owner-a"), true)
	now := stored(h.clock.Now())
	want := store.IdempotentResponse{Key: idemKey, Fingerprint: idemPrint, Owner: "owner-a", State: store.IdempotencyInFlight,
		Header: []byte{}, Body: []byte{}, LeaseUntil: now.Add(idemLease), Leased: true, ExpiresAt: now.Add(idemTTL), CreatedAt: now, UpdatedAt: now}
	checkIdem(t, "claim result", first, want)
	checkIdem(t, "stored claim", mustGetIdem(t, s, idemKey), want)

	// A second claim, same payment or not, finds the first.
	held := mustClaim(t, s, claim("owner-b"), false)
	checkIdem(t, "holder seen by a second claim", held, want)
	other := claim("owner-c")
	other.Fingerprint = "other"
	if held := mustClaim(t, s, other, false); held.Fingerprint != idemPrint {
		t.Fatalf("a claim with another fingerprint sees %q", held.Fingerprint)
	}

	body := make([]byte, 70_000)
	for i := range body {
		body[i] = byte(i)
	}
	h.clock.Advance(time.Second)
	must(t, "keep", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: idemKey, Owner: "owner-a", From: store.IdempotencyInFlight, To: store.IdempotencyKept,
		ChargeRef: "exact:42", Status: 200, Header: []byte(`{"A":["b"]}`), Body: body, Lease: time.Minute,
	}))
	now2 := stored(h.clock.Now())
	want.State, want.ChargeRef, want.Status, want.Header, want.Body = store.IdempotencyKept, "exact:42", 200, []byte(`{"A":["b"]}`), body
	want.LeaseUntil, want.UpdatedAt = now2.Add(time.Minute), now2
	checkIdem(t, "kept", mustGetIdem(t, s, idemKey), want)

	must(t, "complete", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: idemKey, Owner: "owner-a", From: store.IdempotencyKept, To: store.IdempotencyComplete,
		ChargeRef: "exact:42", Status: 201, Header: []byte(`{}`), BodyOmitted: true, Relaxed: true,
	}))
	want.State, want.Status, want.Header, want.Body, want.BodyOmitted = store.IdempotencyComplete, 201, []byte(`{}`), []byte{}, true
	want.LeaseUntil, want.Leased = now2, false
	checkIdem(t, "complete", mustGetIdem(t, s, idemKey), want)
}

// testIdempotencyUpdateRules: only the owner moves a record, and only from the state it names.
func testIdempotencyUpdateRules(t *testing.T, h *harness) {
	s := h.store(t)
	mustClaim(t, s, claim("owner-a"), true)
	update := func(owner string, from, to store.IdempotencyState) error {
		return s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{Key: idemKey, Owner: owner, From: from, To: to, Status: 200})
	}
	wantErr(t, "update by another owner", update("owner-b", store.IdempotencyInFlight, store.IdempotencyComplete), store.ErrConflict)
	wantErr(t, "update from the wrong state", update("owner-a", store.IdempotencyKept, store.IdempotencyComplete), store.ErrConflict)
	wantErr(t, "update of an unknown key", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: "pay_unknown_key_0001", Owner: "owner-a", From: store.IdempotencyInFlight, To: store.IdempotencyKept}), store.ErrNotFound)
	wantErr(t, "unknown state", update("owner-a", "done", store.IdempotencyKept), store.ErrInvalid)
	must(t, "update by the owner", update("owner-a", store.IdempotencyInFlight, store.IdempotencyComplete))

	invalid := map[string]store.IdempotencyClaim{
		"empty key":      {Fingerprint: idemPrint, Owner: "o", TTL: time.Hour},
		"oversized key":  {Key: string(bytes.Repeat([]byte("k"), 129)), Fingerprint: idemPrint, Owner: "o", TTL: time.Hour},
		"no fingerprint": {Key: idemKey, Owner: "o", TTL: time.Hour},
		"no owner":       {Key: idemKey, Fingerprint: idemPrint, TTL: time.Hour},
		"no TTL":         {Key: idemKey, Fingerprint: idemPrint, Owner: "o"},
		"negative lease": {Key: idemKey, Fingerprint: idemPrint, Owner: "o", TTL: time.Hour, Lease: -1},
		"negative TTL":   {Key: idemKey, Fingerprint: idemPrint, Owner: "o", TTL: -time.Hour},
	}
	for name, c := range invalid {
		_, _, err := s.ClaimIdempotencyKey(t.Context(), c)
		wantErr(t, name, err, store.ErrInvalid)
	}
}

// testIdempotencyLeaseAndTTL: a request that died in flight gives its key to a retry of the same
// payment once its lease ran out; a kept response is never taken over; a record past its TTL is
// gone for everyone.
func testIdempotencyLeaseAndTTL(t *testing.T, h *harness) {
	s := h.store(t)
	mustClaim(t, s, claim("owner-a"), true)
	h.clock.Advance(idemLease)
	if r := mustGetIdem(t, s, idemKey); r.Leased {
		t.Fatal("a lease that ran out is still reported as held")
	}
	other := claim("owner-x")
	other.Fingerprint = "another payment"
	mustClaim(t, s, other, false) // a dead request's key still binds its payment
	if r := mustClaim(t, s, claim("owner-b"), true); r.Owner != "owner-b" || !r.Leased {
		t.Fatalf("takeover: %+v", r)
	}
	wantErr(t, "the dead request's late update", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: idemKey, Owner: "owner-a", From: store.IdempotencyInFlight, To: store.IdempotencyComplete}), store.ErrConflict)
	must(t, "keep", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: idemKey, Owner: "owner-b", From: store.IdempotencyInFlight, To: store.IdempotencyKept, ChargeRef: "exact:7"}))
	h.clock.Advance(time.Hour)
	mustClaim(t, s, claim("owner-c"), false) // kept: the charge decides, not a retry

	h.clock.Advance(idemTTL)
	_, err := s.GetIdempotentResponse(t.Context(), idemKey)
	wantErr(t, "get after the TTL", err, store.ErrNotFound)
	wantErr(t, "update after the TTL", s.UpdateIdempotentResponse(t.Context(), store.IdempotencyUpdate{
		Key: idemKey, Owner: "owner-b", From: store.IdempotencyKept, To: store.IdempotencyComplete}), store.ErrNotFound)
	if r := mustClaim(t, s, other, true); r.Fingerprint != "another payment" || r.State != store.IdempotencyInFlight || r.ChargeRef != "" {
		t.Fatalf("claim after the TTL: %+v", r)
	}
}

// testIdempotencyReleaseAndPurge: a release frees the key for the same or another payment; the
// purge removes expired records only, at most limit at a time.
func testIdempotencyReleaseAndPurge(t *testing.T, h *harness) {
	s := h.store(t)
	mustClaim(t, s, claim("owner-a"), true)
	must(t, "release by another owner", s.ReleaseIdempotencyKey(t.Context(), idemKey, "owner-b"))
	mustClaim(t, s, claim("owner-b"), false)
	must(t, "release", s.ReleaseIdempotencyKey(t.Context(), idemKey, "owner-a"))
	must(t, "release again", s.ReleaseIdempotencyKey(t.Context(), idemKey, "owner-a"))
	mustClaim(t, s, claim("owner-b"), true)

	for i := range 5 {
		c := claim("owner")
		c.Key = fmt.Sprintf("pay_purge_%010d", i)
		c.TTL = time.Duration(i+1) * time.Minute
		mustClaim(t, s, c, true)
	}
	h.clock.Advance(3 * time.Minute) // records 0, 1 and 2 expired
	n, err := s.PurgeIdempotentResponses(t.Context(), 2)
	if err != nil || n != 2 {
		t.Fatalf("purge limited to 2: %d %v", n, err)
	}
	if n, err = s.PurgeIdempotentResponses(t.Context(), 100); err != nil || n != 1 {
		t.Fatalf("second purge: %d %v", n, err)
	}
	for i, live := range []bool{false, false, false, true, true} {
		_, err := s.GetIdempotentResponse(t.Context(), fmt.Sprintf("pay_purge_%010d", i))
		if (err == nil) != live {
			t.Errorf("record %d after the purge: %v, want live %v", i, err, live)
		}
	}
	mustGetIdem(t, s, idemKey)
	_, err = s.PurgeIdempotentResponses(t.Context(), 0)
	wantErr(t, "purge limit 0", err, store.ErrInvalid)
}

// testIdempotencyRace: many requests on two handles (two replicas) claim one key at once; exactly
// one wins, and every loser sees the winner.
func testIdempotencyRace(t *testing.T, h *harness) {
	stores := []store.Store{h.store(t), h.store(t)}
	const perStore = 10
	for round := range 10 {
		key := fmt.Sprintf("pay_race_%012d", round)
		var mu sync.Mutex
		var wins []string
		var holders []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 * perStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c := claim(fmt.Sprintf("owner-%d", i))
				c.Key = key
				r, claimed, err := stores[i%2].ClaimIdempotencyKey(t.Context(), c)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if claimed {
					wins = append(wins, c.Owner)
				}
				holders = append(holders, r.Owner)
			}()
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("round %d: %d claims won, want 1", round, len(wins))
		}
		for _, o := range holders {
			if o != wins[0] {
				t.Fatalf("round %d: a claim saw holder %s, the winner is %s", round, o, wins[0])
			}
		}
	}
}

func checkIdem(t *testing.T, what string, got *store.IdempotentResponse, want store.IdempotentResponse) {
	t.Helper()
	same := got.Key == want.Key && got.Fingerprint == want.Fingerprint && got.Owner == want.Owner &&
		got.State == want.State && got.ChargeRef == want.ChargeRef && got.Status == want.Status &&
		bytes.Equal(got.Header, want.Header) && bytes.Equal(got.Body, want.Body) && got.BodyOmitted == want.BodyOmitted &&
		got.LeaseUntil.Equal(want.LeaseUntil) && got.Leased == want.Leased && got.ExpiresAt.Equal(want.ExpiresAt) &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt) &&
		got.LeaseUntil.Location() == time.UTC && got.ExpiresAt.Location() == time.UTC
	if !same {
		g, w := *got, want
		g.Body, w.Body = nil, nil
		t.Fatalf("%s:\n got %+v (body %d bytes)\nwant %+v (body %d bytes)", what, g, len(got.Body), w, len(want.Body))
	}
}
