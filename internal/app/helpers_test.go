package app

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/config"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// env is a dev environment for one test: embedded chain, token and a gateway, all on loopback.
type env struct {
	t     *testing.T
	dev   *Dev
	chain *evm.Client
	token common.Address
	payTo common.Address
}

func startEnv(t *testing.T, upstream string) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := StartDev(ctx, DevOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", RPCListen: "127.0.0.1:0", Upstream: upstream})
	if err != nil {
		t.Fatalf("start dev: %v", err)
	}
	served := make(chan struct{})
	go func() { defer close(served); dev.Serve(ctx) }()
	chain, err := evm.Dial(ctx, dev.Info.RPCURL, big.NewInt(1337), evm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-served
		chain.Close()
		dev.Close()
	})
	return &env{t: t, dev: dev, chain: chain, token: DevTokenAddress, payTo: common.HexToAddress(dev.Info.PayTo)}
}

func account(i int) devkeys.Account { return devkeys.DevAccounts(10)[i] }

func (e *env) balance(addr common.Address) *big.Int {
	e.t.Helper()
	b, err := e.chain.BalanceOf(context.Background(), e.token, addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// challenge fetches the 402 of a priced route and returns its exact requirement.
func challenge(t *testing.T, method, url string) x402.PaymentRequirements {
	return offerFor(t, method, url, "exact")
}

// offerFor fetches the 402 of a priced route and returns its requirement for scheme.
func offerFor(t *testing.T, method, url, scheme string) x402.PaymentRequirements {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("%s %s: status %d, want 402", method, url, resp.StatusCode)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range pr.Accepts {
		if a.Scheme == scheme {
			return a
		}
	}
	t.Fatalf("the 402 of %s offers no %s requirement: %+v", url, scheme, pr.Accepts)
	return x402.PaymentRequirements{}
}

func signPayment(t *testing.T, key *ecdsa.PrivateKey, req x402.PaymentRequirements) *x402.PaymentPayload {
	t.Helper()
	p, err := (&exact.Signer{Key: key}).CreatePayload(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func encode(t *testing.T, p *x402.PaymentPayload) string {
	t.Helper()
	h, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type result struct {
	status     int
	body       string
	header     http.Header
	settlement *x402.SettlementResponse
	required   *x402.PaymentRequired
}

func send(t *testing.T, method, url, paymentHeader string) result {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if paymentHeader != "" {
		req.Header.Set(x402.HeaderPaymentSignature, paymentHeader)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, body: string(body), header: resp.Header}
	if h := resp.Header.Get(x402.HeaderPaymentResponse); h != "" {
		if r.settlement, err = x402.DecodeSettlementResponse(h, 0); err != nil {
			t.Fatalf("PAYMENT-RESPONSE: %v", err)
		}
	}
	if h := resp.Header.Get(x402.HeaderPaymentRequired); h != "" {
		if r.required, err = x402.DecodePaymentRequired(h, 0); err != nil {
			t.Fatalf("PAYMENT-REQUIRED: %v", err)
		}
	}
	return r
}

// countingUpstream serves /v1/quote with a configurable status and counts calls.
type countingUpstream struct {
	calls  atomic.Int64
	status atomic.Int64
	during func() // runs inside the handler, between verification and settlement
	server *httptest.Server
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{}
	u.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		if u.during != nil {
			u.during()
		}
		if s := u.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "payer": r.Header.Get("X-Payper-Payer")})
	}))
	t.Cleanup(u.server.Close)
	return u
}

// faultyRPC forwards JSON-RPC to the chain until it is switched off, then answers 503.
type faultyRPC struct {
	down   atomic.Bool
	server *httptest.Server
}

func newFaultyRPC(t *testing.T, target string) *faultyRPC {
	u, _ := url.Parse(target)
	f := &faultyRPC{}
	rp := httputil.NewSingleHostReverseProxy(u)
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "node unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.server.Close)
	return f
}

// startGateway runs a second gateway on the env's chain with a changed configuration.
func (e *env) startGateway(edit func(*config.Config)) string {
	_, url := e.startGatewayFull(edit)
	return url
}

// startGatewayFull is startGateway returning the gateway too.
func (e *env) startGatewayFull(edit func(*config.Config)) (*Gateway, string) {
	e.t.Helper()
	cfg, err := devConfig(DevOptions{DataDir: e.t.TempDir(), Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, "http://unused.invalid")
	if err != nil {
		e.t.Fatal(err)
	}
	edit(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := NewGateway(ctx, cfg, nil)
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

// dialAs returns a chain client that sends transactions as key.
func dialAs(e *env, key *ecdsa.PrivateKey) (*evm.Client, error) {
	return evm.Dial(context.Background(), e.dev.Info.RPCURL, big.NewInt(1337), evm.Options{SettlerKey: key})
}
