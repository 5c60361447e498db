package paywall

import (
	"context"
	"errors"
	"sync"
	"time"
)

// memKept is an in-memory ResponseStore with the store's semantics, its own clock included. The
// SQL stores are held to the same rules by store/storetest, and the paywall runs on them end to
// end in internal/app.
type memKept struct {
	mu      sync.Mutex
	now     time.Time
	records map[string]*memRecord
	fail    error // returned by every call while set
	updates []KeptState
}

type memRecord struct {
	KeptResponse
	leaseUntil, expires time.Time
}

func newMemKept() *memKept {
	return &memKept{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), records: map[string]*memRecord{}}
}

func (m *memKept) advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
}

func (m *memKept) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// live returns the unexpired record of id; the caller holds mu.
func (m *memKept) live(id string) (*memRecord, bool) {
	r, ok := m.records[id]
	if !ok || !r.expires.After(m.now) {
		return nil, false
	}
	r.Leased = r.leaseUntil.After(m.now)
	return r, true
}

func (m *memKept) ClaimPaymentID(_ context.Context, c PaymentIDClaim) (KeptResponse, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return KeptResponse{}, false, m.fail
	}
	if r, ok := m.live(c.ID); ok && !(r.State == KeptInFlight && !r.Leased && r.Fingerprint == c.Fingerprint) {
		return r.KeptResponse, false, nil
	}
	r := &memRecord{KeptResponse: KeptResponse{ID: c.ID, Fingerprint: c.Fingerprint, Owner: c.Owner, State: KeptInFlight, Leased: c.Lease > 0},
		leaseUntil: m.now.Add(c.Lease), expires: m.now.Add(c.TTL)}
	m.records[c.ID] = r
	return r.KeptResponse, true, nil
}

func (m *memKept) KeptResponse(_ context.Context, id string) (KeptResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return KeptResponse{}, m.fail
	}
	r, ok := m.live(id)
	if !ok {
		return KeptResponse{}, ErrKeptNotFound
	}
	return r.KeptResponse, nil
}

func (m *memKept) UpdateKeptResponse(_ context.Context, u KeptUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	r, ok := m.live(u.ID)
	switch {
	case !ok:
		return ErrKeptNotFound
	case r.Owner != u.Owner || r.State != u.From:
		return ErrKeptConflict
	}
	r.State, r.ChargeRef, r.Status, r.BodyOmitted = u.To, u.ChargeRef, u.Status, u.BodyOmitted
	r.Header, r.Body = append([]byte(nil), u.Header...), append([]byte(nil), u.Body...)
	r.leaseUntil = m.now.Add(u.Lease)
	m.updates = append(m.updates, u.To)
	return nil
}

func (m *memKept) ReleasePaymentID(_ context.Context, id, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if r, ok := m.records[id]; ok && r.Owner == owner {
		delete(m.records, id)
	}
	return nil
}

func (m *memKept) record(id string) (KeptResponse, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(id)
	if !ok {
		return KeptResponse{}, false
	}
	return r.KeptResponse, true
}

var errStoreDown = errors.New("store down")
