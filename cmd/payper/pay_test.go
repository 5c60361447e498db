package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/x402"
)

// answerLosingProxy forwards to target and records the payment headers it sees. While lose is
// set, it forwards the next paid request (the gateway serves and charges it) and answers the
// caller 503 instead of what the gateway said.
type answerLosingProxy struct {
	mu       sync.Mutex
	lose     bool
	payments []string
	server   *httptest.Server
}

func newAnswerLosingProxy(t *testing.T, target string, lose bool) *answerLosingProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &answerLosingProxy{lose: lose}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get(x402.HeaderPaymentSignature)
		p.mu.Lock()
		loseThis := h != "" && p.lose
		if h != "" {
			p.payments = append(p.payments, h)
			p.lose = false
		}
		p.mu.Unlock()
		if !loseThis {
			rp.ServeHTTP(w, r)
			return
		}
		rp.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, "lost on the way back", http.StatusServiceUnavailable)
	}))
	t.Cleanup(p.server.Close)
	return p
}

// TestPayRetriesWithTheSamePayment: `payper pay` resends a paid request whose answer was lost
// with the same payment and payment identifier, and is charged once; --retries 0 (or
// PAYPER_RETRIES=0) does not resend; --no-idempotency sends no identifier.
func TestPayRetriesWithTheSamePayment(t *testing.T) {
	e := startChannelEnv(t)
	account := devkeys.DevAccounts(10)[7]
	who := []string{"--dev-account", "7", "--no-channel", "--max", "$0.01"}

	before := e.balance(account.Address)
	p := newAnswerLosingProxy(t, e.Dev.Info.GatewayURL, true)
	out, _ := e.mustPayper(append(append([]string{"pay"}, who...), p.server.URL+"/v1/quote")...)
	if !strings.Contains(out, account.Address.Hex()) {
		t.Fatalf("stdout %s", out)
	}
	if len(p.payments) != 2 || p.payments[0] != p.payments[1] || paymentID(t, p.payments[0]) == "" {
		t.Fatalf("%d paid attempts; want 2 with the same payment and an identifier", len(p.payments))
	}
	if spent := before - e.balance(account.Address); spent != 1000 {
		t.Fatalf("spent %d, want 1000", spent)
	}

	t.Setenv("PAYPER_RETRIES", "0")
	p = newAnswerLosingProxy(t, e.Dev.Info.GatewayURL, true)
	if _, _, err := e.payper(append(append([]string{"pay"}, who...), p.server.URL+"/v1/quote")...); err == nil ||
		!strings.Contains(err.Error(), "503") || len(p.payments) != 1 {
		t.Fatalf("PAYPER_RETRIES=0: %v after %d paid attempts", err, len(p.payments))
	}

	p = newAnswerLosingProxy(t, e.Dev.Info.GatewayURL, false)
	e.mustPayper(append(append([]string{"pay", "--no-idempotency"}, who...), p.server.URL+"/v1/quote")...)
	if len(p.payments) != 1 || paymentID(t, p.payments[0]) != "" {
		t.Fatalf("--no-idempotency: %d attempts, identifier %q", len(p.payments), paymentID(t, p.payments[0]))
	}
	if _, _, err := e.payper(append(append([]string{"pay", "--retries", "-1"}, who...), p.server.URL+"/v1/quote")...); err == nil {
		t.Fatal("--retries -1 accepted")
	}
}

func paymentID(t *testing.T, header string) string {
	t.Helper()
	p, err := x402.DecodePaymentPayload(header, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := x402.PaymentIdentifier(p.Extensions)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
