package client

import (
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// lossyProxy stands between the client and a real gateway. The first paid request goes through
// (the gateway serves and charges it), but its answer is lost on the way back: replaced by 503
// with Retry-After, or the connection dropped. Everything else passes.
type lossyProxy struct {
	lose    string // "503" or "hangup"
	mu      sync.Mutex
	lost    bool
	headers []string
	server  *httptest.Server
}

func newLossyProxy(t *testing.T, target, lose string) *lossyProxy {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &lossyProxy{lose: lose}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get(x402.HeaderPaymentSignature)
		p.mu.Lock()
		loseThis := h != "" && !p.lost
		if h != "" {
			p.headers = append(p.headers, h)
		}
		p.lost = p.lost || loseThis
		p.mu.Unlock()
		if !loseThis {
			rp.ServeHTTP(w, r)
			return
		}
		served := httptest.NewRecorder()
		rp.ServeHTTP(served, r)
		if served.Code != 200 {
			t.Errorf("the gateway answered the first paid request %d: %s", served.Code, served.Body)
		}
		if lose == "hangup" {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "bad gateway on the way back", http.StatusServiceUnavailable)
	}))
	t.Cleanup(p.server.Close)
	return p
}

// TestLostPaidAnswerIsRecoveredWithoutASecondCharge is the x402 #3438 case against the real
// gateway: the answer to a paid request is lost after the gateway settled it. The SDK resends the
// same signed payment with the same payment identifier, and the gateway answers from what it
// kept: the caller gets the response, and the chain moved the price once.
func TestLostPaidAnswerIsRecoveredWithoutASecondCharge(t *testing.T) {
	e := startDevEnv(t)
	for i, lose := range []string{"503", "hangup"} {
		t.Run(lose, func(t *testing.T) {
			payer := devAccount(5 + i)
			before := e.balance(payer.Address)
			proxy := newLossyProxy(t, e.Dev.Info.GatewayURL, lose)
			sl := &sleeps{}
			tr := &Transport{
				Base:   &http.Transport{DisableKeepAlives: true},
				Payers: []Payer{&exact.Signer{Key: payer.Key}}, MaxPerRequest: big.NewInt(1000), Budget: NewBudget(big.NewInt(5000)),
				RetryPolicy: backoff.Policy{Sleep: sl.sleep},
			}
			resp, err := (&http.Client{Transport: tr}).Get(proxy.server.URL + "/v1/quote")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s, _ := SettlementFrom(resp)
			if resp.StatusCode != 200 || !strings.Contains(string(body), payer.Address.Hex()) || resp.Header.Get("Idempotent-Replayed") != "true" ||
				s == nil || !s.Success {
				t.Fatalf("%d %s %v, settlement %+v", resp.StatusCode, body, resp.Header, s)
			}
			if len(proxy.headers) != 2 || proxy.headers[0] != proxy.headers[1] {
				t.Fatalf("%d paid attempts; the retry must carry the same payment", len(proxy.headers))
			}
			if lose == "503" && (len(sl.waits) != 1 || sl.waits[0] < 1e9) {
				t.Fatalf("waits %v; the 503's Retry-After of 1s must be honoured", sl.waits)
			}
			if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
				t.Fatalf("payer spent %s, want exactly 1000", spent)
			}
			if tr.Budget.Spent().Int64() != 1000 {
				t.Fatalf("budget spent %s", tr.Budget.Spent())
			}
		})
	}
}
