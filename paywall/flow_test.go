package paywall

import (
	"bufio"
	"context"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

// voucherMethod is cash without OnChain: its charges are made final at the handler's headers
// whatever the flow, as a channel voucher's are.
type voucherMethod struct{ m *cashMethod }

func (v voucherMethod) Requirements(price *big.Int) x402.PaymentRequirements {
	r := v.m.Requirements(price)
	r.Scheme = "voucher"
	return r
}

func (v voucherMethod) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error) {
	return v.m.Authorize(ctx, req, p, info)
}

// asyncCash is cash whose charges on FlowAsync routes are deferred, except for tokens that
// start with "sync" (a payer over its bound).
type asyncCash struct{ *cashMethod }

type deferredCash struct{ *cashCharge }

func (a asyncCash) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error) {
	c, err := a.cashMethod.Authorize(ctx, req, p, info)
	if err != nil || info.Flow != FlowAsync || strings.HasPrefix(c.(*cashCharge).token, "sync") {
		return c, err
	}
	return deferredCash{c.(*cashCharge)}, nil
}

func (d deferredCash) Defer(context.Context) (*x402.SettlementResponse, error) {
	d.m.note("defer")
	return &x402.SettlementResponse{Success: true, Network: "test:1", Payer: d.Payer(),
		Extra: map[string]any{ExtraSettlement: SettlementQueued}}, nil
}

func (m *cashMethod) note(event string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, event)
}

func (m *cashMethod) eventList() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.events, ",")
}

// streamFixture is a paywall in front of a handler that writes its status and headers and a
// first event, flushes, and writes a second event only once the test lets it (or runs body
// instead, when set).
type streamFixture struct {
	cash    *cashMethod
	server  *httptest.Server
	release chan struct{}
}

// streamOptions shape a fixture's handler.
type streamOptions struct {
	flow   Flow
	method func(*cashMethod) Method
	status int                                           // default 200
	ctype  string                                        // default text/event-stream
	body   func(f *streamFixture, w http.ResponseWriter) // replaces the two events
}

func newStreamFixture(t *testing.T, o streamOptions) *streamFixture {
	t.Helper()
	f := &streamFixture{cash: &cashMethod{valid: map[string]bool{}, spent: map[string]bool{}}, release: make(chan struct{})}
	for _, tok := range []string{"t1", "t2", "sync1"} {
		f.cash.valid[tok] = true
	}
	if o.status == 0 {
		o.status = 200
	}
	if o.ctype == "" {
		o.ctype = "text/event-stream"
	}
	if o.method == nil {
		o.method = func(c *cashMethod) Method { return c }
	}
	table, err := pricing.New([]pricing.Rule{{Method: "GET", Path: "/s", Price: big.NewInt(1000), Description: "stream"}})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := New(Options{Pricer: table, Methods: []Method{o.method(f.cash)}, Flow: o.flow, MaxResponseBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.cash.note("handler")
		w.Header().Set("Content-Type", o.ctype)
		w.Header().Set(x402.HeaderPaymentResponse, "forged by the upstream")
		if o.body != nil {
			o.body(f, w)
			return
		}
		w.WriteHeader(o.status)
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-f.release
		io.WriteString(w, "data: 2\n\n")
		f.cash.note("handler done")
	})))
	f.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(f.server.Close)
	return f
}

func (f *streamFixture) request(t *testing.T, token string, offer x402.PaymentRequirements) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.server.URL+"/s", nil)
	for k, v := range cashHeader(t, token, offer) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readStreamed reads the first event while the handler still holds the second, then lets it go.
func (f *streamFixture) readStreamed(t *testing.T, resp *http.Response) {
	t.Helper()
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("first event %q %v: it must arrive while the handler is still running", line, err)
	}
	close(f.release)
	rest, _ := io.ReadAll(rd)
	if string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("rest of the stream %q", rest)
	}
}

func settlementOf(t *testing.T, resp *http.Response) *x402.SettlementResponse {
	t.Helper()
	s, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if err != nil {
		t.Fatalf("PAYMENT-RESPONSE %q: %v", resp.Header.Get(x402.HeaderPaymentResponse), err)
	}
	return s
}

// TestChargesStreamAtTheHeaders: a method that is not OnChain, and an OnChain method in
// FlowAfterHeaders, in FlowAuto on an event stream and in FlowAsync, make the charge when the
// handler's headers arrive and stream the body from there.
func TestChargesStreamAtTheHeaders(t *testing.T) {
	cases := []struct {
		name   string
		flow   Flow
		method func(*cashMethod) Method
		token  string
		events string
	}{
		{"voucher in after-body", FlowAfterBody, func(c *cashMethod) Method { return voucherMethod{c} }, "t1", "complete"},
		{"on chain, after-headers", FlowAfterHeaders, nil, "t1", "complete"},
		{"on chain, auto, event stream", FlowAuto, nil, "t1", "complete"},
		{"on chain, async", FlowAsync, func(c *cashMethod) Method { return asyncCash{c} }, "t1", "defer"},
		{"on chain, async over its bound", FlowAsync, func(c *cashMethod) Method { return asyncCash{c} }, "sync1", "complete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newStreamFixture(t, streamOptions{flow: tc.flow, method: tc.method})
			offer := f.cash.Requirements(big.NewInt(1000))
			if tc.method != nil {
				offer = tc.method(f.cash).Requirements(big.NewInt(1000))
			}
			resp := f.request(t, tc.token, offer)
			s := settlementOf(t, resp)
			if resp.StatusCode != 200 || !s.Success || s.ErrorReason != "" {
				t.Fatalf("status %d, settlement %+v", resp.StatusCode, s)
			}
			if tc.events == "defer" && (s.Transaction != "" || s.Extra[ExtraSettlement] != SettlementQueued) {
				t.Fatalf("a deferred charge's PAYMENT-RESPONSE must say it is queued: %+v", s)
			}
			f.readStreamed(t, resp)
			if want := "authorize /s,handler," + tc.events + ",handler done"; f.cash.eventList() != want {
				t.Fatalf("events %s, want %s", f.cash.eventList(), want)
			}
		})
	}
}

// TestBufferedFlowsReleaseAtTheEnd: FlowAfterBody, and FlowAuto on a response that announces no
// stream, hold the whole body and charge once the handler is done.
func TestBufferedFlowsReleaseAtTheEnd(t *testing.T) {
	for _, flow := range []Flow{FlowAfterBody, FlowAuto} {
		t.Run(string(flow), func(t *testing.T) {
			f := newStreamFixture(t, streamOptions{flow: flow, ctype: "application/json"})
			close(f.release)
			resp := f.request(t, "t1", f.cash.Requirements(big.NewInt(1000)))
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "data: 1\n\ndata: 2\n\n" || resp.ContentLength != int64(len(body)) {
				t.Fatalf("%d %q (length %d)", resp.StatusCode, body, resp.ContentLength)
			}
			if s := settlementOf(t, resp); s.Transaction != "tx-t1" {
				t.Fatalf("settlement %+v: the upstream's own PAYMENT-RESPONSE must never pass", s)
			}
			if got := f.cash.eventList(); got != "authorize /s,handler,handler done,complete" {
				t.Fatalf("events %s", got)
			}
		})
	}
}

// TestAutoStreamsWhatOutgrowsTheBuffer: FlowAuto charges a response the moment it outgrows the
// buffer and streams the rest; FlowAfterBody refuses it (TestPaidResponseTooLargeBehindAReverseProxy).
func TestAutoStreamsWhatOutgrowsTheBuffer(t *testing.T) {
	large := strings.Repeat("x", 100) // above the fixture's 64-byte buffer
	f := newStreamFixture(t, streamOptions{flow: FlowAuto, ctype: "application/octet-stream", body: func(f *streamFixture, w http.ResponseWriter) {
		io.WriteString(w, large)
		w.(http.Flusher).Flush()
		f.cash.note("big write done")
		<-f.release
		io.WriteString(w, "end")
	}})
	resp := f.request(t, "t1", f.cash.Requirements(big.NewInt(1000)))
	buf := make([]byte, len(large))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != large {
		t.Fatalf("the first part must arrive while the handler runs: %q %v", buf, err)
	}
	close(f.release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "end" || resp.ContentLength != -1 || settlementOf(t, resp).Transaction != "tx-t1" {
		t.Fatalf("rest %q, length %d", rest, resp.ContentLength)
	}
	if got := f.cash.eventList(); got != "authorize /s,handler,complete,big write done" {
		t.Fatalf("events %s", got)
	}
}

// TestStreamedErrorIsNotCharged: at 400 or more the charge is given back and the error streams
// through, with no PAYMENT-RESPONSE (not even the upstream's).
func TestStreamedErrorIsNotCharged(t *testing.T) {
	for _, flow := range []Flow{FlowAfterHeaders, FlowAuto, FlowAsync} {
		t.Run(string(flow), func(t *testing.T) {
			f := newStreamFixture(t, streamOptions{flow: flow, status: 503, method: func(c *cashMethod) Method { return asyncCash{c} }})
			resp := f.request(t, "t1", f.cash.Requirements(big.NewInt(1000)))
			if resp.StatusCode != 503 || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
			f.readStreamed(t, resp)
			if got := f.cash.eventList(); got != "authorize /s,handler,cancel upstream_status,handler done" {
				t.Fatalf("events %s", got)
			}
		})
	}
}

// TestFailedChargeAtTheHeadersStopsTheStream: when the charge made at the headers fails, the
// client gets the settlement failure and none of the body.
func TestFailedChargeAtTheHeadersStopsTheStream(t *testing.T) {
	f := newStreamFixture(t, streamOptions{flow: FlowAfterHeaders})
	f.cash.failSettl = x402.Failf(x402.ReasonExactTransactionFailed, "reverted")
	close(f.release)
	resp := f.request(t, "t1", f.cash.Requirements(big.NewInt(1000)))
	body, _ := io.ReadAll(resp.Body)
	s := settlementOf(t, resp)
	if resp.StatusCode != 402 || strings.Contains(string(body), "data:") || s.Success || s.ErrorReason != string(x402.ReasonExactTransactionFailed) {
		t.Fatalf("%d %s %+v", resp.StatusCode, body, s)
	}
}

// TestBeforeFlowTakesThePaymentFirst: FlowBefore declares the upfront flow in the offer and the
// description, completes the charge before the handler runs, streams, and keeps the payment
// when the handler then fails.
func TestBeforeFlowTakesThePaymentFirst(t *testing.T) {
	f := newStreamFixture(t, streamOptions{flow: FlowBefore})
	resp, err := http.Get(f.server.URL + "/s")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr := decodeChallenge(t, resp, string(body))
	offer := pr.Accepts[0]
	if offer.Extra[ExtraPaymentFlow] != PaymentFlowUpfront || !strings.Contains(pr.Resource.Description, "not refunded") ||
		!strings.HasPrefix(pr.Resource.Description, "stream") {
		t.Fatalf("the 402 must declare the upfront flow: %+v", pr)
	}
	paid := f.request(t, "t1", offer)
	if paid.StatusCode != 200 || settlementOf(t, paid).Transaction != "tx-t1" {
		t.Fatalf("%d", paid.StatusCode)
	}
	f.readStreamed(t, paid)
	if got := f.cash.eventList(); got != "authorize /s,complete,handler,handler done" {
		t.Fatalf("events %s", got)
	}

	g := newStreamFixture(t, streamOptions{flow: FlowBefore, status: 500})
	failed := g.request(t, "t2", offer)
	if failed.StatusCode != 500 || !settlementOf(t, failed).Success {
		t.Fatalf("a failed answer after an upfront payment must say the payment was taken: %d %v", failed.StatusCode, failed.Header)
	}
	g.readStreamed(t, failed)
	if got := g.cash.eventList(); got != "authorize /s,complete,handler,handler done" {
		t.Fatalf("an upfront payment must stay taken: %s", got)
	}
}

// TestBeforeFlowHandlerFailure: the handler failing before it answers leaves the upfront
// payment taken, and the 502 says so.
func TestBeforeFlowHandlerFailure(t *testing.T) {
	f := newStreamFixture(t, streamOptions{flow: FlowBefore, body: func(*streamFixture, http.ResponseWriter) { panic(http.ErrAbortHandler) }})
	resp := f.request(t, "t1", upfront(f.cash.Requirements(big.NewInt(1000))))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !settlementOf(t, resp).Success || !strings.Contains(string(body), "not refunded") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := f.cash.eventList(); got != "authorize /s,complete,handler" {
		t.Fatalf("events %s", got)
	}
}

// TestBrokenStreamDropsTheConnection: a stream that breaks off after it began cannot be told
// apart from its end by the client unless the connection drops, so it does; the charge stands.
func TestBrokenStreamDropsTheConnection(t *testing.T) {
	f := newStreamFixture(t, streamOptions{flow: FlowAfterHeaders, body: func(_ *streamFixture, w http.ResponseWriter) {
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}})
	resp := f.request(t, "t1", f.cash.Requirements(big.NewInt(1000)))
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a broken stream ended cleanly")
	}
	if got := f.cash.eventList(); got != "authorize /s,handler,complete" {
		t.Fatalf("events %s", got)
	}
}

func TestParseFlow(t *testing.T) {
	for _, f := range Flows {
		if got, err := ParseFlow(string(f)); err != nil || got != f {
			t.Fatalf("%s: %v %v", f, got, err)
		}
	}
	if _, err := ParseFlow("later"); err == nil {
		t.Fatal("an unknown flow parsed")
	}
	for _, h := range []struct {
		header http.Header
		want   bool
	}{
		{http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, true},
		{http.Header{"Content-Type": {"application/x-ndjson"}}, true},
		{http.Header{"Content-Type": {"application/json"}, "Content-Length": {"65"}}, true},
		{http.Header{"Content-Type": {"application/json"}, "Content-Length": {"64"}}, false},
		{http.Header{}, false},
	} {
		if got := streamsAtHeaders(h.header, 64); got != h.want {
			t.Errorf("%v: %v", h.header, got)
		}
	}
}
