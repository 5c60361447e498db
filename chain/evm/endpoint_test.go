package evm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/breaker"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/settle/txn"
)

// twoEndpoints is one dev chain behind two fault proxies.
func twoEndpoints(t *testing.T) (*faultrpc.Proxy, *faultrpc.Proxy) {
	t.Helper()
	chain := startChain(t)
	var proxies [2]*faultrpc.Proxy
	for i := range proxies {
		p, err := faultrpc.Start(chain.RPCURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies[i] = p
	}
	return proxies[0], proxies[1]
}

func dialBoth(t *testing.T, a, b *faultrpc.Proxy, opts Options) *Client {
	t.Helper()
	c, err := DialEndpoints(context.Background(), []string{a.URL(), b.URL()}, big.NewInt(1337), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func sendAndMine(t *testing.T, c *Client, to common.Address, amount int64) {
	t.Helper()
	ctx := withinSeconds(t, 8)
	hash, err := c.Send(ctx, tokenAddr, transferData(to, amount), nil)
	if err == nil {
		_, err = c.WaitMined(ctx, hash)
	}
	if err != nil {
		t.Fatalf("send %d: %v", amount, err)
	}
}

// TestFailoverToSecondEndpoint: the first endpoint goes down; reads and sends continue through the
// second.
func TestFailoverToSecondEndpoint(t *testing.T) {
	first, second := twoEndpoints(t)
	c := dialBoth(t, first, second, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	to := common.Address{0xc1}
	sendAndMine(t, c, to, 1)
	if first.Calls("eth_sendRawTransaction") != 1 || second.Calls("eth_sendRawTransaction") != 0 {
		t.Fatal("a healthy first endpoint was not the one used")
	}
	if err := first.SetDown(faultrpc.RefuseConnections); err != nil {
		t.Fatal(err)
	}
	sendAndMine(t, c, to, 2)
	if b, err := c.BalanceOf(context.Background(), tokenAddr, to); err != nil || b.Int64() != 3 {
		t.Fatalf("read through the second endpoint: %v %v", b, err)
	}
	if second.Calls("eth_sendRawTransaction") != 1 {
		t.Fatalf("%d sends reached the second endpoint, want 1", second.Calls("eth_sendRawTransaction"))
	}
}

// TestUnknownBroadcastGoesToOtherEndpoints: the first endpoint forwards a send and loses the
// answer; the same signed bytes go to the second, which knows them: the send is certain, and one
// transaction is mined.
func TestUnknownBroadcastGoesToOtherEndpoints(t *testing.T) {
	first, second := twoEndpoints(t)
	c := dialBoth(t, first, second, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	first.Add(faultrpc.LoseSendAnswers(0))
	to := common.Address{0xc2}
	sendAndMine(t, c, to, 7)
	if first.Calls("eth_sendRawTransaction") != 1 || second.Calls("eth_sendRawTransaction") != 1 {
		t.Fatalf("sends: first %d, second %d; want one each", first.Calls("eth_sendRawTransaction"), second.Calls("eth_sendRawTransaction"))
	}
	if b, _ := c.BalanceOf(context.Background(), tokenAddr, to); b.Int64() != 7 {
		t.Fatalf("balance %s, want one transfer", b)
	}
}

// TestReceiptsLookedUpOnEveryEndpoint: an endpoint that lags answers null for a mined
// transaction; the receipt is found on the other.
func TestReceiptsLookedUpOnEveryEndpoint(t *testing.T) {
	first, second := twoEndpoints(t)
	c := dialBoth(t, first, second, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	first.Add(faultrpc.NullReceipts(0))
	sendAndMine(t, c, common.Address{0xc3}, 1)
	if second.Calls("eth_getTransactionReceipt") == 0 {
		t.Fatal("the receipt was not looked up on the second endpoint")
	}
}

func TestDialChecksEveryEndpointsChainID(t *testing.T) {
	first, second := twoEndpoints(t)
	second.Add(faultrpc.WrongChainID(8453))
	_, err := DialEndpoints(context.Background(), []string{first.URL(), second.URL()}, big.NewInt(1337), Options{})
	if !errors.Is(err, ErrChainIDMismatch) || !strings.Contains(err.Error(), "rpc#2") {
		t.Fatalf("got %v, want a chain id mismatch naming the second endpoint", err)
	}
	// An endpoint down at start is checked on first use, and not used when it serves another chain.
	if err := second.SetDown(faultrpc.RefuseConnections); err != nil {
		t.Fatal(err)
	}
	c := dialBoth(t, first, second, Options{})
	if err := second.SetDown(faultrpc.Up); err != nil {
		t.Fatal(err)
	}
	if err := first.SetDown(faultrpc.RefuseConnections); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BlockNumber(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read through an endpoint of another chain: %v", err)
	}
	if second.Calls("eth_blockNumber") != 0 {
		t.Fatal("an endpoint serving another chain was asked for chain data")
	}
}

// logBuffer collects log lines, safe for the breaker's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestBreakerFailsFast: after consecutive failures the endpoint's breaker opens; calls then fail
// at once with ErrUnavailable and the time until a probe, without reaching the endpoint; after
// the cool-down one probe passes and, answered, closes it. Every change is logged.
func TestBreakerFailsFast(t *testing.T) {
	chain := startChain(t)
	proxy, err := faultrpc.Start(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logs := &logBuffer{}
	c, err := Dial(context.Background(), proxy.URL(), big.NewInt(1337), Options{
		Breaker: breaker.Options{Failures: 3, OpenFor: time.Minute, Now: clock},
		Retry:   backoff.Policy{Attempts: 1},
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	proxy.Add(faultrpc.Fault{Method: "eth_blockNumber", Do: faultrpc.HTTPStatus(502)})
	for range 3 {
		if _, err := c.BlockNumber(ctx); !errors.Is(err, ErrUnavailable) || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("failing endpoint: %v", err)
		}
	}
	wait, refusing := c.Refusing()
	if !refusing || wait != time.Minute {
		t.Fatalf("Refusing() = %s, %v; want 1m, true", wait, refusing)
	}
	_, err = c.BlockNumber(ctx)
	var hinted interface{ RetryAfter() time.Duration }
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &hinted) || hinted.RetryAfter() != time.Minute {
		t.Fatalf("open breaker: %v", err)
	}
	if n := proxy.Calls("eth_blockNumber"); n != 3 {
		t.Fatalf("%d calls reached the endpoint, want 3: an open breaker fails fast", n)
	}
	proxy.Reset()
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := c.BlockNumber(ctx); err != nil {
		t.Fatalf("probe after the cool-down: %v", err)
	}
	if _, refusing := c.Refusing(); refusing {
		t.Fatal("still refusing after a successful probe")
	}
	out := logs.String()
	for _, want := range []string{"circuit breaker open", "every endpoint's circuit breaker is open", "circuit breaker half-open", "circuit breaker closed", "reachable again"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the logs:\n%s", want, out)
		}
	}
	if strings.Contains(out, proxy.URL()) {
		t.Errorf("a log line holds the endpoint's URL:\n%s", out)
	}
}

// TestReadsRetriedSendsNot: a read that fails transiently is retried with backoff and succeeds;
// a send that fails is never retried that way (its outcome is unknown, and handled as such).
func TestReadsRetriedSendsNot(t *testing.T) {
	proxy, dial := faultyChain(t)
	var waits []time.Duration
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key, Retry: backoff.Policy{
		Attempts: 4, Initial: 100 * time.Millisecond,
		Sleep:  func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
		Jitter: func() float64 { return 0 },
	}})
	proxy.Add(faultrpc.Fault{Method: "eth_call", Times: 2, Do: faultrpc.HTTPStatus(503)})
	if _, err := c.BalanceOf(context.Background(), tokenAddr, common.Address{1}); err != nil {
		t.Fatalf("read after two transient failures: %v", err)
	}
	if n := proxy.Calls("eth_call"); n != 3 || len(waits) != 2 || waits[0] != 50*time.Millisecond || waits[1] != 100*time.Millisecond {
		t.Fatalf("%d calls, waits %v; want 3 calls with growing waits", n, waits)
	}
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.HTTPStatus(503)})
	_, err := c.Send(context.Background(), tokenAddr, transferData(common.Address{2}, 1), nil)
	if !errors.Is(err, txn.ErrBroadcastUnknown) || proxy.Calls("eth_sendRawTransaction") != 1 {
		t.Fatalf("send: %v after %d calls; want one call, outcome unknown", err, proxy.Calls("eth_sendRawTransaction"))
	}
}

// TestEndpointErrorsHideTheURL: an endpoint URL may hold an API key; errors name the host only.
func TestEndpointErrorsHideTheURL(t *testing.T) {
	proxy, dial := faultyChain(t)
	c := dial(Options{Retry: backoff.Policy{Attempts: 1}})
	if err := proxy.SetDown(faultrpc.RefuseConnections); err != nil {
		t.Fatal(err)
	}
	_, err := c.BlockNumber(context.Background())
	if err == nil || strings.Contains(err.Error(), proxy.URL()) || !strings.Contains(err.Error(), "rpc#1 127.0.0.1:") {
		t.Fatalf("error %v: want the endpoint named by host, without its URL", err)
	}
}

// TestSlowEndpointFailsOver: an endpoint slower than the call timeout counts as failed; the read
// is answered by the other at once.
func TestSlowEndpointFailsOver(t *testing.T) {
	first, second := twoEndpoints(t)
	c := dialBoth(t, first, second, Options{CallTimeout: 300 * time.Millisecond})
	first.Add(faultrpc.Fault{Method: "eth_blockNumber", Do: faultrpc.Delay(5 * time.Second)})
	began := time.Now()
	if _, err := c.BlockNumber(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second || second.Calls("eth_blockNumber") != 1 {
		t.Fatalf("read took %s, second endpoint asked %d times", took, second.Calls("eth_blockNumber"))
	}
}
