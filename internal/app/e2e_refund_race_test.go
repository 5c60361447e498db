package app

import (
	"context"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/payper/payper/x402"
)

// gatedUpstream answers /v1/quote at once, holds "?gate" requests until released, and fails
// "?fail" requests with 500.
type gatedUpstream struct {
	URL     string
	entered chan struct{}
	release chan struct{}
}

func startGatedUpstream(t *testing.T) *gatedUpstream {
	t.Helper()
	u := &gatedUpstream{entered: make(chan struct{}, 1), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Has("fail"):
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		case r.URL.Query().Has("gate"):
			u.entered <- struct{}{}
			<-u.release
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"price":"42.00"}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

// TestChannelRefundRacingVoucher: while a cooperative refund is in flight, a voucher that would
// spend the funds being refunded is refused; the refund then pays the provider what was charged
// and returns exactly the rest. A refund whose request fails gives the held funds back.
func TestChannelRefundRacingVoucher(t *testing.T) {
	up := startGatedUpstream(t)
	e := startEnv(t, up.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(6)
	p := newChannelPayer(t, url, payer.Key)
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", url, p.voucher(2000)); r.status != 200 {
		t.Fatalf("voucher 2000: %d", r.status)
	}

	// A refund whose request the upstream fails: nothing is refunded and the funds stay spendable.
	if r := send(t, "GET", url+"?fail", p.header(p.signer.RefundPayload(p.req, big.NewInt(2000), nil))); r.status != 500 {
		t.Fatalf("refund through a failing upstream: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", url, p.voucher(3000)); r.status != 200 {
		t.Fatalf("voucher after a failed refund: %d %+v", r.status, r.required)
	}

	refunded := make(chan result, 1)
	refundHeader := p.header(p.signer.RefundPayload(p.req, big.NewInt(3000), nil))
	go func() { refunded <- send(t, "GET", url+"?gate", refundHeader) }()
	<-up.entered // the refund is authorized and its request is at the upstream
	// The watcher refreshes every channel from the chain meanwhile (as after a restart, or on
	// another event of this channel): the refund has not landed, so the hold stays.
	if err := e.dev.Gateway.Watcher().Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	r := send(t, "GET", url, p.voucher(4000))
	if r.status != 402 || !strings.HasPrefix(r.required.Error, string(x402.ReasonBatchCumulativeExceedsBalance)) {
		t.Fatalf("voucher racing the refund: %d %+v", r.status, r.required)
	}
	close(up.release)
	rr := <-refunded
	if rr.status != 200 || rr.settlement == nil || !rr.settlement.Success || rr.settlement.Amount != "7000" {
		t.Fatalf("refund: %d %+v %s", rr.status, rr.settlement, rr.body)
	}
	if got := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); got.Int64() != 3000 {
		t.Fatalf("payer is out %s, want exactly the 3000 it spent", got)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 3000 {
		t.Fatalf("payTo received %s, want 3000", got)
	}
	if r := send(t, "GET", url, p.voucher(4000)); r.status != 402 {
		t.Fatalf("voucher after the refund: %d", r.status)
	}
}
