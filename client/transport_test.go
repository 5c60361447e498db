package client

import (
	"crypto/ecdsa"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// shop is an x402 server for client tests: it prices every path, accepts any well-formed exact
// payment for the right amount (signature checks live in package exact and the end-to-end
// tests), and records what it was paid.
type shop struct {
	price    string
	refuse   bool // answer every payment with a fresh 402
	payments atomic.Int64
	bodies   []string
	mu       sync.Mutex
	server   *httptest.Server
}

func newShop(t *testing.T, price string) *shop {
	s := &shop{price: price}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.server.Close)
	return s
}

func (s *shop) offer() x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme: "exact", Network: "eip155:1337", Amount: s.price,
		Asset: "0x5FbDB2315678afecb367f032d93F642f64180aa3", PayTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "USD Coin", "version": "2"},
	}
}

func (s *shop) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := r.Header.Get(x402.HeaderPaymentSignature)
	if h != "" {
		p, err := x402.DecodePaymentPayload(h, 0)
		if err != nil {
			http.Error(w, "bad payment", 400)
			return
		}
		pl, err := exact.ParsePayload(p.Payload)
		if err == nil && pl.Authorization.Value.String() == s.price && !s.refuse {
			s.payments.Add(1)
			s.mu.Lock()
			s.bodies = append(s.bodies, string(body))
			s.mu.Unlock()
			resp, _ := x402.EncodeHeader(x402.SettlementResponse{Success: true, Transaction: "0xabc", Network: "eip155:1337", Payer: pl.Authorization.From.Hex()})
			w.Header().Set(x402.HeaderPaymentResponse, resp)
			io.WriteString(w, "paid content")
			return
		}
		s.payments.Add(1) // a payment arrived, even if refused
	}
	challenge, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: 2, Resource: x402.ResourceInfo{URL: r.URL.String()}, Accepts: []x402.PaymentRequirements{s.offer()}})
	w.Header().Set(x402.HeaderPaymentRequired, challenge)
	w.WriteHeader(http.StatusPaymentRequired)
}

func testKey(t *testing.T) *ecdsa.PrivateKey {
	// Test account 2 of the public test mnemonic; never holds real funds.
	k, err := crypto.HexToECDSA("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPaysOnceAndResendsTheBody(t *testing.T) {
	s := newShop(t, "1000")
	var seen []Payment
	tr := &Transport{Payers: []Payer{&exact.Signer{Key: testKey(t)}}, MaxPerRequest: big.NewInt(1000), OnPayment: func(p Payment) { seen = append(seen, p) }}
	resp, err := (&http.Client{Transport: tr}).Post(s.server.URL+"/echo", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "paid content" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if s.payments.Load() != 1 || s.bodies[0] != "hello" {
		t.Fatalf("payments %d bodies %q", s.payments.Load(), s.bodies)
	}
	if len(seen) != 1 || seen[0].Settlement == nil || !seen[0].Settlement.Success || seen[0].Requirement.Amount != "1000" {
		t.Fatalf("OnPayment: %+v", seen)
	}
	st, err := SettlementFrom(resp)
	if err != nil || st.Transaction != "0xabc" {
		t.Fatalf("SettlementFrom: %+v %v", st, err)
	}
}

func TestRefusesPricesAboveTheMaximum(t *testing.T) {
	s := newShop(t, "1001")
	tr := &Transport{Payers: []Payer{&exact.Signer{Key: testKey(t)}}, MaxPerRequest: big.NewInt(1000)}
	_, err := (&http.Client{Transport: tr}).Get(s.server.URL)
	if !errors.Is(err, ErrNoPayableRequirement) || !strings.Contains(err.Error(), "above the maximum") {
		t.Fatalf("err %v", err)
	}
	if s.payments.Load() != 0 {
		t.Fatal("paid above the maximum")
	}
}

func TestNeverPaysTwiceForOneRequest(t *testing.T) {
	s := newShop(t, "1000")
	s.refuse = true
	budget := NewBudget(big.NewInt(10_000))
	tr := &Transport{Payers: []Payer{&exact.Signer{Key: testKey(t)}}, Budget: budget}
	resp, err := (&http.Client{Transport: tr}).Get(s.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 402 || s.payments.Load() != 1 {
		t.Fatalf("status %d after %d payments; want the second 402 handed back after one payment", resp.StatusCode, s.payments.Load())
	}
	if budget.Spent().Sign() != 0 {
		t.Fatalf("a refused payment stays charged to the budget: %s", budget.Spent())
	}
}

func TestBudgetIsSharedAndExact(t *testing.T) {
	s := newShop(t, "1000")
	budget := NewBudget(big.NewInt(10_000))
	tr := &Transport{Payers: []Payer{&exact.Signer{Key: testKey(t)}}, Budget: budget}
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var paid, refused atomic.Int64
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(s.server.URL)
			switch {
			case errors.Is(err, ErrBudgetExceeded):
				refused.Add(1)
			case err != nil:
				t.Error(err)
			default:
				resp.Body.Close()
				if resp.StatusCode == 200 {
					paid.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if paid.Load() != 10 || refused.Load() != 15 || s.payments.Load() != 10 || budget.Remaining().Sign() != 0 {
		t.Fatalf("paid %d refused %d server saw %d remaining %s", paid.Load(), refused.Load(), s.payments.Load(), budget.Remaining())
	}
}

func TestLeavesOtherResponsesAlone(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusPaymentRequired) // a 402 that is not x402
		io.WriteString(w, "subscribe first")
	}))
	defer plain.Close()
	s := newShop(t, "1000")
	tr := &Transport{Payers: []Payer{&exact.Signer{Key: testKey(t)}}}
	c := &http.Client{Transport: tr}
	resp, err := c.Get(plain.URL)
	if err != nil || resp.StatusCode != 402 {
		t.Fatalf("%v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "subscribe first" {
		t.Fatalf("body %q", body)
	}
	// A request that already carries a payment is not paid again by the transport.
	req, _ := http.NewRequest("GET", s.server.URL, nil)
	req.Header.Set(x402.HeaderPaymentSignature, "e30=")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || s.payments.Load() != 0 {
		t.Fatalf("status %d payments %d", resp.StatusCode, s.payments.Load())
	}
	// Network and asset filters.
	tr.Networks = []string{"eip155:8453"}
	if _, err := c.Get(s.server.URL); !errors.Is(err, ErrNoPayableRequirement) {
		t.Fatalf("network filter: %v", err)
	}
	tr.Networks, tr.Assets = nil, []string{"0x0000000000000000000000000000000000000001"}
	if _, err := c.Get(s.server.URL); !errors.Is(err, ErrNoPayableRequirement) {
		t.Fatalf("asset filter: %v", err)
	}
}
