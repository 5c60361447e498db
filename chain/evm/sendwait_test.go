package evm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/settle/txn"
)

// TestSendAndWaitFollowsUnknownBroadcasts: a send that waits for its receipt does not give up on
// a broadcast without a usable answer. A transaction the node got (the answer was lost) and one
// the node never got (the re-send delivers it) both end mined, each exactly once; one that never
// reaches the node within the bound is reported as unknown, and nothing moved.
func TestSendAndWaitFollowsUnknownBroadcasts(t *testing.T) {
	proxy, dial := faultyChain(t)
	ctx := context.Background()
	key := devkeys.DevAccounts(4)[3].Key
	to := common.HexToAddress("0x00000000000000000000000000000000000000b3")
	transfer := func(c *Client, amount int64) (common.Hash, error) {
		return c.sendAndWait(ctx, tokenAddr, transferData(to, amount))
	}
	c := dial(Options{SettlerKey: key})

	// The node got it; only the answer was lost.
	proxy.Add(faultrpc.LoseSendAnswers(1))
	if _, err := transfer(c, 1); err != nil {
		t.Fatalf("answer lost: %v", err)
	}
	// The first broadcast never reached the node; the re-send does.
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.HTTPStatus(504)})
	if _, err := transfer(c, 2); err != nil {
		t.Fatalf("first broadcast lost: %v", err)
	}
	// Nothing reaches the node within the bound.
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Do: faultrpc.HTTPStatus(504)})
	if _, err := transfer(dial(Options{SettlerKey: key, UnknownBroadcastWait: 300 * time.Millisecond}), 4); !errors.Is(err, txn.ErrBroadcastUnknown) {
		t.Fatalf("never delivered: got %v, want txn.ErrBroadcastUnknown", err)
	}
	if b, err := c.BalanceOf(ctx, tokenAddr, to); err != nil || b.Int64() != 1+2 {
		t.Fatalf("balance %v (%v), want 3: each delivered transfer exactly once, the lost one never", b, err)
	}
}
