package batchmethod

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/internal/pgtest"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/postgres"
	"github.com/payper/payper/store/sqlite"
)

// twoHandles opens two independent handles on one fresh database, as two replicas would have.
func twoHandles(t *testing.T, backend string) (store.Store, store.Store) {
	t.Helper()
	ctx := context.Background()
	open := func(s store.Store, err error) store.Store {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if backend == "sqlite" {
		path := filepath.Join(t.TempDir(), "s.db")
		a := open(sqlite.Open(ctx, path, sqlite.Options{}))
		return a, open(sqlite.Open(ctx, path, sqlite.Options{}))
	}
	dsn := pgtest.Database(t, "payper_channels")
	a := open(postgres.Open(ctx, dsn, postgres.Options{}))
	return a, open(postgres.Open(ctx, dsn, postgres.Options{}))
}

// stuckChain is an escrow whose claim transactions are never mined: a claim waits until its
// round gives up. It tells when a claim was sent.
type stuckChain struct {
	recordingChain
	sent chan struct{}
}

func (c *stuckChain) Send(context.Context, common.Address, []byte, func(common.Hash) error) (common.Hash, error) {
	c.sent <- struct{}{}
	return common.HexToHash("0x02"), nil
}

func (c *stuckChain) WaitMined(ctx context.Context, _ common.Hash) (*types.Receipt, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestOneClaimerAtATimeAcrossReplicas: two replicas' claimers share one database. While one is
// in a round (its claim transaction stuck), the other skips its rounds instead of sending a
// rival claim; the stuck round ends at its deadline instead of holding every later round up,
// and the next round, on either replica, claims.
func TestOneClaimerAtATimeAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			a, b := twoHandles(t, backend)
			f := newClaimFixture(t)
			f.st = a
			f.channel(1, 10_000, 1000, false)
			stuck := &stuckChain{sent: make(chan struct{}, 1)}
			first := f.claimer(stuck, 10)
			first.Leases, first.RoundTimeout = a, 2*time.Second
			recorded := &recordingChain{}
			second := f.claimer(recorded, 10)
			second.Store, second.Leases = b, b

			done := make(chan error, 1)
			go func() { _, err := first.RunOnce(context.Background()); done <- err }()
			<-stuck.sent
			res, err := second.RunOnce(context.Background())
			if err != nil || !res.Skipped || len(recorded.claims) != 0 {
				t.Fatalf("a rival round while the first is claiming: %+v %v; want it skipped", res, err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("the stuck round ended with %v, want its deadline", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a stuck claim transaction held its round past the round's deadline")
			}
			res, err = second.RunOnce(context.Background())
			if err != nil || res.Skipped || res.Amount.Int64() != 1000 || len(recorded.claims) != 1 {
				t.Fatalf("the round after the stuck one: %+v %v; want 1000 claimed", res, err)
			}
		})
	}
}
