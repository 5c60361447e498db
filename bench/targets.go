package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/proxy"
	"github.com/payper/payper/scheme/evmsig"
)

// quotePath is the priced demo route the gateway sells ($0.001); the bare proxy forwards the
// same path to the same upstream.
const quotePath = "/v1/quote"

// upstreamBody is what the upstream answers: small, so the comparison measures the proxies.
var upstreamBody = []byte(`{"symbol":"PAY","price":"42.00","currency":"USD"}` + "\n")

// targets are the servers under test and the upstream they share.
type targets struct {
	upstream    *http.Server
	bare        *http.Server
	floor       *http.Server
	dev         *app.Dev
	stopGateway context.CancelFunc
	gatewayDone chan struct{}

	upstreamURL string
	bareAddr    string // host:port
	floorAddr   string // host:port
	gatewayAddr string // host:port
}

// startTargets starts the upstream, the dev environment's gateway in front of it (channels on)
// and a bare reverse proxy in front of it too, all on loopback.
func startTargets(ctx context.Context, dataDir string, upstreamDelay time.Duration, log *slog.Logger) (_ *targets, err error) {
	t := &targets{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream listen: %w", err)
	}
	t.upstream = newServer(upstreamHandler(upstreamDelay))
	go t.upstream.Serve(upLn)
	t.upstreamURL = "http://" + upLn.Addr().String()

	t.dev, err = app.StartDev(ctx, app.DevOptions{
		DataDir: dataDir, Listen: "127.0.0.1:0", RPCListen: "127.0.0.1:0", Upstream: t.upstreamURL, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	gwCtx, cancel := context.WithCancel(ctx)
	t.stopGateway, t.gatewayDone = cancel, make(chan struct{})
	go func() {
		defer close(t.gatewayDone)
		if err := t.dev.Serve(gwCtx); err != nil {
			log.Error("gateway stopped", "err", err)
		}
	}()
	gw, err := url.Parse(t.dev.Info.GatewayURL)
	if err != nil {
		return nil, err
	}
	t.gatewayAddr = gw.Host

	up, _ := url.Parse(t.upstreamURL)
	px, err := proxy.New(up, proxy.Options{})
	if err != nil {
		return nil, fmt.Errorf("bare proxy: %w", err)
	}
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare proxy listen: %w", err)
	}
	t.bare = newServer(px)
	go t.bare.Serve(bareLn)
	t.bareAddr = bareLn.Addr().String()

	check, err := signatureCheck()
	if err != nil {
		return nil, err
	}
	floorLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor proxy listen: %w", err)
	}
	t.floor = newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		px.ServeHTTP(w, r)
	}))
	go t.floor.Serve(floorLn)
	t.floorAddr = floorLn.Addr().String()
	return t, nil
}

// signatureCheck returns the floor proxy's per-request work: recovering the signer of one
// secp256k1 signature with the gateway's own function, the one step no voucher-checking gateway
// can skip or share between requests.
func signatureCheck() (func() error, error) {
	key := devkeys.DevAccounts(firstPayer + 1)[firstPayer].Key // public test mnemonic
	digest := crypto.Keccak256Hash([]byte("payper bench floor"))
	sig, err := evmsig.SignDigest(key, digest)
	if err != nil {
		return nil, err
	}
	want := crypto.PubkeyToAddress(key.PublicKey)
	return func() error {
		got, err := evmsig.RecoverSigner(digest, sig)
		if err == nil && got != want {
			err = fmt.Errorf("recovered %s, want %s", got, want)
		}
		return err
	}, nil
}

// newServer configures a server with the header limits the gateway's server has, so both proxies
// parse requests alike. The gateway's connection cap and progress-based deadlines
// (internal/httpguard) are left out on purpose: they are part of what the gateway costs.
func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
}

// upstreamHandler answers the quote route after delay, which stands for the time a real API
// spends on I/O (its database, other services) without spending CPU on this machine.
func upstreamHandler(delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != quotePath {
			http.NotFound(w, r)
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		serveQuote(w)
	})
}

func serveQuote(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(upstreamBody)))
	w.Write(upstreamBody)
}

// Close stops everything startTargets started.
func (t *targets) Close() {
	if t.stopGateway != nil {
		t.stopGateway()
		select {
		case <-t.gatewayDone:
		case <-time.After(30 * time.Second):
		}
	}
	if t.dev != nil {
		t.dev.Close()
	}
	for _, s := range []*http.Server{t.bare, t.floor, t.upstream} {
		if s != nil {
			s.Close()
		}
	}
}
