package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payper/payper/store"
)

func TestMapError(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code}) }
	cases := []struct {
		err       error
		want      error
		retryable bool
	}{
		{pg("23505"), store.ErrDuplicate, false},
		{pg("23514"), store.ErrInvalid, false},             // check violation
		{pg("22003"), store.ErrInvalid, false},             // numeric out of range
		{pg("40001"), store.ErrUnavailable, true},          // serialization failure
		{pg("40P01"), store.ErrUnavailable, true},          // deadlock
		{pg("57P01"), store.ErrUnavailable, false},         // admin shutdown
		{pg("08006"), store.ErrUnavailable, false},         // connection failure
		{pg("25006"), store.ErrUnavailable, false},         // read-only transaction
		{pg("53100"), store.ErrUnavailable, false},         // disk full
		{io.ErrUnexpectedEOF, store.ErrUnavailable, false}, // connection cut
		{context.DeadlineExceeded, store.ErrUnavailable, false},
	}
	for _, tc := range cases {
		got := mapError(tc.err)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("mapError(%v) = %v, want %v wrapping the cause", tc.err, got, tc.want)
		}
		if retryable(tc.err) != tc.retryable {
			t.Errorf("retryable(%v) = %v", tc.err, !tc.retryable)
		}
	}
}
