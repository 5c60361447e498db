package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/postgres"
)

// These need no server: nothing listens on port 1 of the loopback.
func TestOpenFailures(t *testing.T) {
	const password = "s3cret-password"
	_, err := postgres.Open(t.Context(), "postgres://payper:"+password+"@127.0.0.1:1/payper?sslmode=disable&connect_timeout=5", postgres.Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("unreachable server: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error leaks the password: %v", err)
	}

	_, err = postgres.Open(t.Context(), "postgres://payper:"+password+"@[::1/payper", postgres.Options{})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("malformed DSN: %v, want ErrInvalid", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error leaks the password: %v", err)
	}
}
