package evm

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/testusdc"
)

// TestSendAndWaitFollowsUnknownBroadcasts: a send that waits for its receipt does not give up on
// a broadcast without a usable answer. A transaction the node got (the answer was lost) and one
// the node never got (the re-send delivers it) both end mined, each exactly once; one that never
// reaches the node within the bound is reported as unknown, and nothing moved.
func TestSendAndWaitFollowsUnknownBroadcasts(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	var (
		mu       sync.Mutex
		lose     int // sends to lose before the node
		answered bool
	)
	proxyURL := rawTxProxy(t, chain, func(w http.ResponseWriter, req rpcRequest, forward func() []byte) {
		mu.Lock()
		lost := lose > 0
		if lost {
			lose--
		}
		hideAnswer := !answered
		mu.Unlock()
		if lost {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		body := forward()
		if hideAnswer {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	dial := func(wait time.Duration) *Client {
		c, err := Dial(ctx, proxyURL, nil, Options{SettlerKey: devkeys.DevAccounts(4)[3].Key, UnknownBroadcastWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000b3")
	transfer := func(c *Client, amount int64) (common.Hash, error) {
		return c.sendAndWait(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(amount)))
	}
	c := dial(time.Minute)

	// The node got it; only the answer was lost.
	if _, err := transfer(c, 1); err != nil {
		t.Fatalf("answer lost: %v", err)
	}
	// The first broadcast never reached the node; the re-send does.
	mu.Lock()
	lose, answered = 1, true
	mu.Unlock()
	if _, err := transfer(c, 2); err != nil {
		t.Fatalf("first broadcast lost: %v", err)
	}
	// Nothing reaches the node within the bound.
	mu.Lock()
	lose = 1 << 30
	mu.Unlock()
	if _, err := transfer(dial(300*time.Millisecond), 4); !errors.Is(err, ErrBroadcastUnknown) {
		t.Fatalf("never delivered: got %v, want ErrBroadcastUnknown", err)
	}
	if b, err := c.BalanceOf(ctx, tokenAddr, to); err != nil || b.Int64() != 1+2 {
		t.Fatalf("balance %v (%v), want 3: each delivered transfer exactly once, the lost one never", b, err)
	}
}
