package settle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/txn"
)

// oneTxChain answers a send with sendErr (after the write-ahead hook) and a wait with receipt,
// or, without one, by waiting for the context.
type oneTxChain struct {
	sendErr  error
	receipt  *types.Receipt
	waitErr  error
	recorded []common.Hash
}

func (c *oneTxChain) Send(_ context.Context, _ common.Address, _ []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	h := common.HexToHash("0x0a")
	if onSigned != nil {
		if err := onSigned(h); err != nil {
			return common.Hash{}, fmt.Errorf("%w: write-ahead record: %w", txn.ErrNotSent, err)
		}
		c.recorded = append(c.recorded, h)
	}
	return h, c.sendErr
}

func (c *oneTxChain) WaitMined(ctx context.Context, _ common.Hash) (*types.Receipt, error) {
	if c.receipt == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.receipt, c.waitErr
}

// TestSendAndWaitOutcomes: a send that certainly did not go out is not waited for; one whose
// broadcast outcome is unknown is waited for, bounded by UnknownWait, and reported with the mined
// variant's hash when it lands; a transaction mined with status 0 keeps its receipt.
func TestSendAndWaitOutcomes(t *testing.T) {
	mined := &types.Receipt{TxHash: common.HexToHash("0x0b"), Status: types.ReceiptStatusSuccessful}
	reverted := &types.Receipt{TxHash: common.HexToHash("0x0a"), Status: types.ReceiptStatusFailed}
	refused := fmt.Errorf("%w: node refused: nonce too low", txn.ErrNotSent)
	unknown := fmt.Errorf("%w: rate limited", txn.ErrBroadcastUnknown)
	cases := []struct {
		name    string
		chain   *oneTxChain
		waited  bool
		tx      common.Hash
		receipt bool
		is      []error
	}{
		{"mined", &oneTxChain{receipt: mined}, true, mined.TxHash, true, nil},
		{"refused", &oneTxChain{sendErr: refused}, false, common.HexToHash("0x0a"), false, []error{txn.ErrNotSent}},
		{"unknown, then mined as a replacement", &oneTxChain{sendErr: unknown, receipt: mined}, true, mined.TxHash, true, nil},
		{"unknown, never seen", &oneTxChain{sendErr: unknown}, true, common.HexToHash("0x0a"), false, []error{txn.ErrBroadcastUnknown}},
		{"reverted", &oneTxChain{receipt: reverted, waitErr: fmt.Errorf("%w: 0x0a", txn.ErrFailed)}, true, reverted.TxHash, true, []error{txn.ErrFailed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var afterSend int
			s := SendAndWait(context.Background(), tc.chain, Call{Data: []byte{1},
				OnSigned: func(common.Hash) error { return nil }, AfterSend: func() { afterSend++ }, UnknownWait: 20 * time.Millisecond})
			if s.Waited != tc.waited || s.Tx != tc.tx || (s.Receipt != nil) != tc.receipt || afterSend != 1 || len(tc.chain.recorded) != 1 {
				t.Fatalf("%+v (after send %d, recorded %v)", s, afterSend, tc.chain.recorded)
			}
			if len(tc.is) == 0 && s.Err != nil {
				t.Fatalf("unexpected error %v", s.Err)
			}
			for _, want := range tc.is {
				if !errors.Is(s.Err, want) {
					t.Fatalf("error %v does not match %v", s.Err, want)
				}
			}
		})
	}
}

// TestSendAndWaitWithoutABoundWaitsForTheCaller: with no UnknownWait, a broadcast of unknown
// outcome is waited for as long as the caller's context allows, and the error says both.
func TestSendAndWaitWithoutABoundWaitsForTheCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s := SendAndWait(ctx, &oneTxChain{sendErr: txn.ErrBroadcastUnknown}, Call{})
	if !s.Waited || !errors.Is(s.Err, txn.ErrBroadcastUnknown) || !errors.Is(s.Err, context.DeadlineExceeded) {
		t.Fatalf("%+v", s)
	}
}
