package settle_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/settle/txn"
)

// TestBatcherSendsTheOthersWhenOneCannotBeRecorded: a batch member whose write-ahead record is
// refused (another sender has the payment) is answered alone; the others are sent without it.
func TestBatcherSendsTheOthersWhenOneCannotBeRecorded(t *testing.T) {
	_, settler, offer := batcherEnv(t)
	accounts := devkeys.DevAccounts(10)
	b := &settle.Batcher{Chain: settler, Window: 200 * time.Millisecond}
	refusal := errors.New("recorded elsewhere")
	const n, refused = 6, 2
	outcomes := make([]settle.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		tr := signedTransfer(t, accounts[2+i], offer, 1000, false)
		if i == refused {
			tr.OnSigned = func(common.Hash) error { return refusal }
		}
		wg.Go(func() { outcomes[i] = b.Settle(context.Background(), tr) })
	}
	wg.Wait()
	for i, o := range outcomes {
		if i == refused {
			if !errors.Is(o.Err, refusal) || o.Tx != (common.Hash{}) || o.Used {
				t.Fatalf("the refused member: %+v; want its own refusal, nothing sent", o)
			}
			continue
		}
		if o.Err != nil || !o.Used {
			t.Fatalf("member %d: %+v; want settled", i, o)
		}
	}
}

// refusingChain signs every transaction and has the node refuse it.
type refusingChain struct{}

func (refusingChain) Send(_ context.Context, _ common.Address, _ []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	h := common.HexToHash("0x01")
	if err := onSigned(h); err != nil {
		return common.Hash{}, err
	}
	return h, fmt.Errorf("%w: node refused: %w", txn.ErrNotSent, errors.New("intrinsic gas too low"))
}

func (refusingChain) WaitMined(ctx context.Context, _ common.Hash) (*types.Receipt, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (refusingChain) Call(context.Context, common.Address, []byte) ([]byte, error) { return nil, nil }

// TestBatcherAnswersATransactionTheNodeRefused: a signed transaction the node refused was not
// sent; its transfers are told so at once, not left waiting for a receipt that cannot come.
func TestBatcherAnswersATransactionTheNodeRefused(t *testing.T) {
	b := &settle.Batcher{Chain: refusingChain{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o := b.Settle(ctx, settle.Transfer{OnSigned: func(common.Hash) error { return nil }})
	if !errors.Is(o.Err, txn.ErrNotSent) || o.Tx != (common.Hash{}) {
		t.Fatalf("outcome %+v; want not sent, no transaction", o)
	}
}

// TestBatcherWaitsOnlyForExpectedTransfers: once transfers are announced with Expect, a batch
// waits its window only while one is still expected. With a window of an hour, a lone expected
// payment is sent at once, and two announced together end their wait when the second arrives.
func TestBatcherWaitsOnlyForExpectedTransfers(t *testing.T) {
	_, settler, offer := batcherEnv(t)
	accounts := devkeys.DevAccounts(10)
	b := &settle.Batcher{Chain: settler, Window: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	arrived := b.Expect()
	tr := signedTransfer(t, accounts[2], offer, 1000, false)
	arrived()
	if o := b.Settle(ctx, tr); o.Err != nil || !o.Used {
		t.Fatalf("a lone expected transfer: %+v; want it sent at once and settled", o)
	}

	first, second := b.Expect(), b.Expect()
	outcomes := make([]settle.Outcome, 2)
	var wg sync.WaitGroup
	for i, arrive := range []func(){first, second} {
		tr := signedTransfer(t, accounts[3+i], offer, 1000, false)
		wg.Go(func() { arrive(); outcomes[i] = b.Settle(ctx, tr) })
	}
	wg.Wait()
	for i, o := range outcomes {
		if o.Err != nil || !o.Used {
			t.Fatalf("expected transfer %d: %+v; want settled once both arrived", i, o)
		}
	}
}
