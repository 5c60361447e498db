package evm

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/chain/devkeys"
)

// cuttableLink forwards TCP connections to a target and can cut every open one, as a network
// failure or a restarted load balancer would.
type cuttableLink struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startLink(t *testing.T, target string) *cuttableLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cuttableLink{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); l.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, in, out)
			l.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return l
}

func (l *cuttableLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// eventually waits, bounded, for cond: the follower's state changes in its own goroutine.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}

// TestLostSubscriptionFallsBackToPolling: when the connection carrying the new-heads
// subscription breaks, waiters keep getting their receipts from polls, and the subscription is
// made again later.
func TestLostSubscriptionFallsBackToPolling(t *testing.T) {
	t.Parallel() // it mostly waits for blocks
	b := startBeatChain(t, time.Second)
	ws, err := url.Parse(b.WSURL())
	if err != nil {
		t.Fatal(err)
	}
	link := startLink(t, ws.Host)
	ctx := withinSeconds(t, 30)
	c, err := Dial(ctx, "ws://"+link.ln.Addr().String(), nil, Options{SettlerKey: devkeys.DevAccounts(4)[3].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	settleAfterBlock(t, ctx, b, c, 0, 1)
	if !c.heads.subscribed.Load() {
		t.Fatal("not following a subscription over a WebSocket endpoint")
	}

	link.cut()
	eventually(t, ctx, "the follower noticed the lost subscription", func() bool { return !c.heads.subscribed.Load() })
	polls := c.heads.polls.Load()
	if lag := settleAfterBlock(t, ctx, b, c, 200*time.Millisecond, 2); lag > time.Second/2 {
		t.Errorf("without the subscription the wait returned %v after the block", lag)
	}
	if c.heads.polls.Load() == polls {
		t.Error("the head was not polled while the subscription was lost")
	}
	eventually(t, ctx, "subscribed again", c.heads.subscribed.Load)
	settleAfterBlock(t, ctx, b, c, 0, 3)
}
