package exactmethod

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// queueLedger is fakeLedger with the queue's writes, for settling queued payments.
type queueLedger struct {
	fakeLedger
	firstConflict bool
	requeued      []string
}

func (l *queueLedger) MarkFirstSubmitted(ctx context.Context, id int64, h string) error {
	if l.firstConflict {
		return fmt.Errorf("payment %d: %w", id, store.ErrConflict)
	}
	return l.MarkSubmitted(ctx, id, h)
}

func (l *queueLedger) RequeuePayment(_ context.Context, _ int64, h string) error {
	l.requeued = append(l.requeued, h)
	return nil
}

// scriptedChain signs (calls the write-ahead hook), then answers a send with err.
type scriptedChain struct {
	fakeChain
	err error
}

func (c *scriptedChain) Send(_ context.Context, _ common.Address, _ []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	c.sent++
	h := common.HexToHash("0x0abc")
	if err := onSigned(h); err != nil {
		return common.Hash{}, fmt.Errorf("%w: write-ahead record: %w", txn.ErrNotSent, err)
	}
	return h, c.err
}

func (c *scriptedChain) WaitMined(_ context.Context, h common.Hash) (*types.Receipt, error) {
	return &types.Receipt{TxHash: h, Status: types.ReceiptStatusSuccessful}, nil
}

func queuedPayment(t *testing.T) store.Payment {
	t.Helper()
	pl := exact.Payload{Signature: make([]byte, 65), Authorization: exact.Authorization{
		From: common.HexToAddress("0x01"), To: common.HexToAddress("0x02"), Value: big.NewInt(1000),
		ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(time.Now().Add(time.Hour).Unix()), Nonce: common.HexToHash("0x05"),
	}}
	raw, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	return store.Payment{ID: 9, Network: "eip155:1337", Asset: "0x03", Payload: string(raw), Async: true, Queued: true}
}

// TestQueuedSendOutcomes: a queued payment whose transfer certainly did not go out for a reason
// of the gateway's own is put back in the queue, never failed (its payer was served and would
// be blocked); one another sender recorded first is left to it; one that would revert fails.
func TestQueuedSendOutcomes(t *testing.T) {
	cases := []struct {
		name          string
		sendErr       error
		firstConflict bool
		requeued      int
		failed        int
		batchErr      bool
	}{
		{"settled", nil, false, 0, 0, false},
		{"nodes refused the broadcast", fmt.Errorf("%w: no endpoint", txn.ErrNotSent), false, 1, 0, true},
		{"settler cannot pay", fmt.Errorf("%w: %w", txn.ErrNotSent, txn.ErrSettlerUnfunded), false, 1, 0, true},
		{"another sender recorded first", nil, true, 0, 0, false},
		{"would revert", fmt.Errorf("%w: %w", txn.ErrNotSent, &txn.RevertError{Reason: "FiatTokenV2: invalid signature"}), false, 0, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ledger := &queueLedger{firstConflict: tc.firstConflict}
			chain := &scriptedChain{err: tc.sendErr}
			e := &Method{Ledger: ledger, Chain: chain}
			err := e.SettleQueued(context.Background(), []store.Payment{queuedPayment(t)})
			if (err != nil) != tc.batchErr || len(ledger.requeued) != tc.requeued || len(ledger.failed) != tc.failed || len(ledger.released) != 0 {
				t.Fatalf("batch error %v, ledger %+v", err, ledger)
			}
			if tc.requeued == 1 && ledger.requeued[0] != common.HexToHash("0x0abc").Hex() {
				t.Fatalf("requeued under %v", ledger.requeued)
			}
			if tc.name == "settled" && len(ledger.settled) != 1 {
				t.Fatalf("ledger %+v", ledger)
			}
			if tc.failed == 1 && ledger.failed[0] != string(x402.ReasonExactTransactionSimFailed) {
				t.Fatalf("failed with %v", ledger.failed)
			}
		})
	}
}
