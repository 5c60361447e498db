package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startGatewayHooked is startGatewayFull for a gateway built with test hooks and a logger.
func (e *env) startGatewayHooked(edit func(*config.Config), h hooks, log *slog.Logger) (*Gateway, string) {
	e.t.Helper()
	cfg, err := devConfig(DevOptions{DataDir: e.t.TempDir(), Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, "http://unused.invalid")
	if err != nil {
		e.t.Fatal(err)
	}
	edit(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := newGateway(ctx, cfg, log, h)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); gw.Serve(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		gw.Close()
	})
	return gw, "http://" + ln.Addr().String()
}

// faultRoutes prices every path under /f/ at 1000 atomic units; paths under /free/ are unlisted
// and so free.
func faultRoutes(c *config.Config, upstream string) {
	c.Upstream = upstream
	c.Routes = append(c.Routes, config.Route{Method: "*", Path: "/f/**", Price: "1000", Description: "faults"})
}

// attempt sends a request like send but reports a broken connection as status 0 instead of
// failing the test: a response cut mid-body is an outcome under test.
func attempt(t *testing.T, method, url, paymentHeader string) result {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if paymentHeader != "" {
		req.Header.Set(x402.HeaderPaymentSignature, paymentHeader)
	}
	client := &http.Client{Timeout: 30 * time.Second} // a liveness guard, far above every bound
	resp, err := client.Do(req)
	if err != nil {
		return result{body: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{body: err.Error(), header: resp.Header}
	}
	r := result{status: resp.StatusCode, body: string(body), header: resp.Header}
	if h := resp.Header.Get(x402.HeaderPaymentResponse); h != "" {
		r.settlement, _ = x402.DecodeSettlementResponse(h, 0)
	}
	return r
}

// pendingNonce reads an account's transaction count (pending block included) with a raw
// JSON-RPC call: a settlement that was sent, mined or not, moves it.
func (e *env) pendingNonce(addr common.Address) uint64 {
	e.t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionCount","params":["%s","pending"]}`, addr.Hex())
	resp, err := http.Post(e.dev.Info.RPCURL, "application/json", bytes.NewBufferString(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Result string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(out.Result, "0x"), 16, 64)
	if err != nil {
		e.t.Fatalf("nonce %q: %v", out.Result, err)
	}
	return n
}

// chargedOn returns the charged total of the payer's channel with the gateway's store.
func chargedOn(t *testing.T, gw *Gateway, payer common.Address) *big.Int {
	t.Helper()
	chs, err := gw.Store().ListChannels(context.Background(), store.ChannelFilter{Payer: strings.ToLower(payer.Hex())})
	if err != nil || len(chs) != 1 {
		t.Fatalf("channels of %s: %v %v", payer.Hex(), chs, err)
	}
	return chs[0].Charged
}

// logBuffer collects a gateway's JSON log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// messages returns the msg of every line whose key has value.
func (b *logBuffer) messages(key, value string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry[key] == value {
			out = append(out, entry["msg"].(string))
		}
	}
	return out
}
