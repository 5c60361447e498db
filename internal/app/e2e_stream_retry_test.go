package app

import (
	"context"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/payper/payper/config"
	"github.com/payper/payper/paywall"
)

// TestRetriesOfStreamedAndDeferredAnswers: a payment identifier answers a retry of a paid
// stream with the stream kept whole when it was small, with 409 response_not_kept and the
// payment's settlement when it was too large to keep; a retry of an async answer once its
// payment settled gets the transaction that paid for it. The upstream runs once per payment and
// the money moves once.
func TestRetriesOfStreamedAndDeferredAnswers(t *testing.T) {
	up := newStreamUpstream(t)
	e := startEnv(t, up.server.URL)
	gw, base := e.startGatewayHooked(func(c *config.Config) {
		streamRoutes(c, up.server.URL)
		c.Routes = append(c.Routes, config.Route{Method: "GET", Path: "/s/deferred/**", Price: "1000", Settle: config.FlowAsync})
		c.Routes[len(c.Routes)-1], c.Routes[len(c.Routes)-2] = c.Routes[len(c.Routes)-2], c.Routes[len(c.Routes)-1]
	}, hooks{queueOff: true}, nil)
	payer := account(7)
	before := e.balance(payer.Address)
	pay := func(url, id string) string {
		ext := declared(t, url)
		return encode(t, withID(t, signPayment(t, payer.Key, challenge(t, "GET", url)), ext, id))
	}

	// A small event stream is kept whole.
	events := base + "/s/events?n=3&every=10ms"
	header := pay(events, "pay_stream_small_0000000001")
	first := readEvents(t, up, events, header)
	if first.status != 200 || len(first.arrived) != 3 {
		t.Fatalf("stream: %d %s", first.status, first.body)
	}
	again := send(t, "GET", events, header)
	if again.status != 200 || again.header.Get(paywall.HeaderReplayed) != "true" || !strings.Contains(again.body, "data: event 2") ||
		again.settlement == nil || again.settlement.Transaction != first.settlement.Transaction {
		t.Fatalf("retry of a small stream: %d %q %+v", again.status, again.body, again.settlement)
	}

	// A stream larger than the gateway keeps: the retry learns the settlement, not the body.
	large := base + "/s/large?mib=2"
	header = pay(large, "pay_stream_large_0000000001")
	got := fetchDigest(t, large, header)
	if got.size != 2<<20 {
		t.Fatalf("large stream: %d bytes", got.size)
	}
	again = send(t, "GET", large, header)
	if again.status != http.StatusConflict || !strings.Contains(again.body, "response_not_kept") ||
		again.settlement == nil || !again.settlement.Success || len(again.settlement.Transaction) != 66 {
		t.Fatalf("retry of a large stream: %d %s %+v", again.status, again.body, again.settlement)
	}

	// Async: accepted first, the transaction on a retry once the queue sent it.
	deferred := base + "/s/deferred/events?n=2&every=10ms"
	header = pay(deferred, "pay_stream_deferred_00000001")
	first = readEvents(t, up, deferred, header)
	if first.status != 200 || first.settlement == nil || first.settlement.Extra[paywall.ExtraSettlement] != paywall.SettlementQueued {
		t.Fatalf("async stream: %d %+v", first.status, first.settlement)
	}
	if n, err := gw.queue.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("queue: %d %v", n, err)
	}
	again = send(t, "GET", deferred, header)
	if again.status != 200 || again.header.Get(paywall.HeaderReplayed) != "true" || again.settlement == nil ||
		!again.settlement.Success || len(again.settlement.Transaction) != 66 || again.settlement.Extra[paywall.ExtraSettlement] != nil {
		t.Fatalf("retry of a settled async answer: %d %+v", again.status, again.settlement)
	}

	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 3000 {
		t.Fatalf("payer spent %s for three paid requests and their retries", spent)
	}
}
