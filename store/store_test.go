package store_test

import (
	"testing"

	"github.com/payper/payper/store"
)

func TestPaymentStatus(t *testing.T) {
	cases := []struct {
		s               store.PaymentStatus
		valid, terminal bool
	}{
		{store.StatusReserved, true, false},
		{store.StatusSubmitted, true, false},
		{store.StatusSettled, true, true},
		{store.StatusFailed, true, true},
		{store.StatusReleased, true, true},
		{"", false, false},
		{"confirmed", false, false},
	}
	for _, tc := range cases {
		if tc.s.Valid() != tc.valid || tc.s.Terminal() != tc.terminal {
			t.Errorf("%q: Valid %v Terminal %v", tc.s, tc.s.Valid(), tc.s.Terminal())
		}
	}
}
