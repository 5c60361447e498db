package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/breaker"
	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/faultupstream"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
)

// TestUpstreamBreaker: an upstream that fails three times in a row opens the breaker. While it
// is open, priced requests get 503 with Retry-After at once, before their payment is even
// decoded (a garbage header gets 503, not 400; a forged signature 503, not 402), nothing is
// reserved and no channel is charged; free routes get the same 503 from the proxy, and the
// upstream sees none of it. Once the cool-down has passed, one probe goes through and, when it
// succeeds, closes the breaker.
func TestUpstreamBreaker(t *testing.T) {
	up := faultupstream.Start(t)
	e := startEnv(t, up.URL)
	clock := newFakeClock()
	const openFor = 10 * time.Second
	logs := &logBuffer{}
	gw, base := e.startGatewayHooked(func(c *config.Config) {
		faultRoutes(c, up.URL)
		c.UpstreamBreaker = config.UpstreamBreaker{Enabled: true, Failures: 3, OpenFor: openFor, MaxOpenFor: time.Minute}
	}, hooks{now: clock.Now}, slog.New(slog.NewJSONHandler(logs, nil)))
	payer, channelPayer := account(5), account(9)
	paidURL := base + "/f/ok"
	exactReq := challenge(t, "GET", paidURL)
	channel := newChannelPayer(t, paidURL, channelPayer.Key)
	if r := send(t, "GET", paidURL, channel.deposit(20_000, 1000)); r.status != 200 {
		t.Fatalf("channel deposit: %d %s", r.status, r.body)
	}

	// The deposit's answer streams to the client while the proxy is still in the request, so
	// its success may be reported just after the client has it, between two of the failures:
	// then a fourth failure is the third in a row.
	for i := 0; gw.breaker.State() != breaker.Open; i++ {
		if i == 4 {
			t.Fatalf("breaker %s after %d upstream failures", gw.breaker.State(), i)
		}
		if r := send(t, "GET", base+"/free/status?code=503", ""); r.status != 503 {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}

	calls := up.Calls()
	paymentsBefore := countPayments(t, gw, payer.Address.Hex())
	charged := chargedOn(t, gw, channelPayer.Address)
	forged := signPayment(t, payer.Key, exactReq)
	pl, err := exact.ParsePayload(forged.Payload)
	if err != nil {
		t.Fatal(err)
	}
	pl.Signature[7] ^= 0xff // verified, this would be invalid_exact_evm_signature (402)
	forged.Payload, _ = json.Marshal(pl)
	refused := map[string]struct{ url, header string }{
		"paid, exact":      {paidURL, encode(t, signPayment(t, payer.Key, exactReq))},
		"paid, forged":     {paidURL, encode(t, forged)},
		"paid, channel":    {paidURL, channel.voucher(2000)},
		"paid, no payment": {paidURL, ""},
		"paid, garbage":    {paidURL, "not base64!"},
		"free":             {base + "/free/ok", ""},
	}
	for name, req := range refused {
		r := send(t, "GET", req.url, req.header)
		if r.status != 503 || r.header.Get("Retry-After") != "10" {
			t.Fatalf("%s while open: %d, Retry-After %q, %s", name, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if up.Calls() != calls {
		t.Fatal("a request reached the upstream while the breaker was open")
	}
	if countPayments(t, gw, payer.Address.Hex()) != paymentsBefore {
		t.Fatal("a payment was reserved while the breaker was open")
	}
	if chargedOn(t, gw, channelPayer.Address).Cmp(charged) != 0 {
		t.Fatal("a channel was charged while the breaker was open")
	}

	// After the cool-down a probe passes; a paid one is charged as usual, and closes the breaker.
	clock.Advance(openFor)
	before := e.balance(payer.Address)
	if r := send(t, "GET", paidURL, encode(t, signPayment(t, payer.Key, exactReq))); r.status != 200 || r.settlement == nil {
		t.Fatalf("probe: %d %s", r.status, r.body)
	}
	if gw.breaker.State() != breaker.Closed {
		t.Fatalf("breaker %s after a successful probe", gw.breaker.State())
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
		t.Fatalf("probe charged %s", spent)
	}
	if r := send(t, "GET", paidURL, channel.voucher(2000)); r.status != 200 {
		t.Fatalf("channel after the breaker closed: %d %s", r.status, r.body)
	}
	// The forged payment above is refused as such once payments are looked at again.
	if r := send(t, "GET", paidURL, encode(t, forged)); r.status != 402 {
		t.Fatalf("forged payment with the breaker closed: %d", r.status)
	}
	got := logs.messages("breaker", "upstream")
	want := []string{"circuit breaker open", "circuit breaker half-open", "circuit breaker closed"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("state changes logged: %q, want %q", got, want)
	}
}

func countPayments(t *testing.T, gw *Gateway, payer string) int {
	t.Helper()
	payments, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer})
	if err != nil {
		t.Fatal(err)
	}
	return len(payments)
}
