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

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// channelShop is a batch-settlement server for client tests. It runs the scheme's real local
// verification (batch.Verifier) against in-memory channel state, credits deposits without a
// chain, and can be told to misbehave.
type channelShop struct {
	t        *testing.T
	price    *big.Int
	offer    batch.Offer
	verifier *batch.Verifier

	mu      sync.Mutex
	charged map[common.Hash]*big.Int
	balance map[common.Hash]*big.Int
	last    map[common.Hash]*batch.VoucherState
	// A timed withdrawal in progress per channel: its amount and start (unix seconds).
	pending    map[common.Hash]*big.Int
	withdrawAt map[common.Hash]uint64

	// Faults.
	failNext     int               // answer the next paid request with this status, no settlement
	dropDeposit  bool              // with failNext: the deposit never happened
	forgeWith    *ecdsa.PrivateKey // answer every voucher with a corrective 402 signed by this key
	forgeCharged *big.Int          // the charged total a forged or bare corrective claims
	bareCorrect  bool              // answer every voucher with a corrective 402 without voucher state

	paid          atomic.Int64 // paid requests received
	exactPayments atomic.Int64
	server        *httptest.Server
}

func newChannelShop(t *testing.T, minDeposit *big.Int) *channelShop {
	v, err := batch.NewVerifier(batch.VerifierConfig{Network: "eip155:1337"})
	if err != nil {
		t.Fatal(err)
	}
	s := &channelShop{
		t: t, price: big.NewInt(1000), verifier: v,
		offer: batch.Offer{
			Network: "eip155:1337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
			Name: "USD Coin", Version: "2", PayTo: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
			// Test account 0 of the public test mnemonic as the receiver authorizer.
			ReceiverAuthorizer: common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
			WithdrawDelay:      900, MinDeposit: minDeposit, MaxTimeoutSeconds: 60,
		},
		charged: map[common.Hash]*big.Int{}, balance: map[common.Hash]*big.Int{}, last: map[common.Hash]*batch.VoucherState{},
		pending: map[common.Hash]*big.Int{}, withdrawAt: map[common.Hash]uint64{},
	}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.server.Close)
	return s
}

func (s *channelShop) offers() []x402.PaymentRequirements {
	exactOffer := x402.PaymentRequirements{Scheme: "exact", Network: "eip155:1337", Amount: s.price.String(),
		Asset: s.offer.Asset.Hex(), PayTo: s.offer.PayTo.Hex(), MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "USD Coin", "version": "2"}}
	return []x402.PaymentRequirements{exactOffer, s.offer.Requirements(s.price)}
}

func (s *channelShop) challenge(w http.ResponseWriter, r *http.Request, reason string, accepts []x402.PaymentRequirements) {
	h, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: 2, Error: reason, Resource: x402.ResourceInfo{URL: "http://" + r.Host + r.URL.Path}, Accepts: accepts})
	w.Header().Set(x402.HeaderPaymentRequired, h)
	w.WriteHeader(http.StatusPaymentRequired)
}

func (s *channelShop) serve(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get(x402.HeaderPaymentSignature)
	if h == "" {
		s.challenge(w, r, "", s.offers())
		return
	}
	s.paid.Add(1)
	pp, err := x402.DecodePaymentPayload(h, 0)
	if err != nil {
		http.Error(w, "bad payment", 400)
		return
	}
	if pp.Accepted.Scheme == "exact" {
		s.exactPayments.Add(1)
		resp, _ := x402.EncodeHeader(x402.SettlementResponse{Success: true, Transaction: "0xabc", Network: "eip155:1337"})
		w.Header().Set(x402.HeaderPaymentResponse, resp)
		io.WriteString(w, "paid content")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pl, err := batch.ParsePaymentPayload(pp)
	if err != nil {
		s.reject(w, r, err)
		return
	}
	id := s.verifier.ChannelID(pl.ChannelConfig)
	snap := batch.Snapshot{ChargedCumulative: s.get(s.charged, id), Balance: s.get(s.balance, id),
		PendingWithdrawal: s.get(s.pending, id), WithdrawRequestedAt: s.withdrawAt[id]}
	if vs := s.last[id]; vs != nil {
		snap.SignedMaxClaimable, snap.Signature = vs.SignedMaxClaimable, vs.Signature
	}
	if pl.Type == batch.TypeVoucher && (s.forgeWith != nil || s.bareCorrect) {
		s.forge(w, r, id, snap)
		return
	}
	terms := s.offer.Terms(s.price)
	var deposited *big.Int
	switch pl.Type {
	case batch.TypeDeposit:
		_, err = s.verifier.VerifyDeposit(terms, snap, pl)
		deposited = pl.Deposit.Amount
	case batch.TypeVoucher:
		_, err = s.verifier.VerifyVoucher(terms, snap, pl)
	default:
		err = x402.Failf(x402.ReasonBatchPayloadType, "not here")
	}
	if err != nil {
		s.reject(w, r, err)
		return
	}
	if deposited != nil && !(s.failNext != 0 && s.dropDeposit) {
		s.balance[id] = new(big.Int).Add(s.get(s.balance, id), deposited)
	}
	if s.failNext != 0 {
		w.WriteHeader(s.failNext) // served nothing, charged nothing
		s.failNext, s.dropDeposit = 0, false
		return
	}
	max := pl.Voucher.MaxClaimableAmount
	s.charged[id] = max
	s.last[id] = &batch.VoucherState{SignedMaxClaimable: max, Signature: pl.Voucher.Signature}
	state := batch.ChannelState{ChannelID: id, Balance: s.get(s.balance, id), TotalClaimed: new(big.Int), RefundNonce: new(big.Int),
		ChargedCumulativeAmount: max, WithdrawRequestedAt: s.withdrawAt[id]}
	var resp batch.SettlementResponse
	if deposited != nil {
		resp = batch.DepositResponse("eip155:1337", pl.ChannelConfig.Payer, common.HexToHash("0xd0"), deposited, state, s.price)
	} else {
		resp = batch.VoucherResponse("eip155:1337", pl.ChannelConfig.Payer, state, s.price)
	}
	out, _ := x402.EncodeHeader(resp)
	w.Header().Set(x402.HeaderPaymentResponse, out)
	io.WriteString(w, "paid content")
}

func (s *channelShop) reject(w http.ResponseWriter, r *http.Request, err error) {
	accepts := s.offers()
	var m *batch.CumulativeMismatchError
	if errors.As(err, &m) {
		accepts[1] = m.Corrective(accepts[1])
	}
	reason, _ := x402.ReasonOf(err)
	s.challenge(w, r, string(reason)+": "+x402.MessageOf(err), accepts)
}

// forge answers with a corrective 402 claiming forgeCharged, backed by a voucher signed with
// forgeWith (or by no voucher with bareCorrect).
func (s *channelShop) forge(w http.ResponseWriter, r *http.Request, id common.Hash, snap batch.Snapshot) {
	state := snap.ChannelState(id)
	state.ChargedCumulativeAmount = s.forgeCharged
	var vs *batch.VoucherState
	if !s.bareCorrect {
		digest := batch.Voucher{ChannelID: id, MaxClaimableAmount: s.forgeCharged}.Digest(s.verifier.Separator())
		sig, _ := evmsig.SignDigest(s.forgeWith, digest)
		vs = &batch.VoucherState{SignedMaxClaimable: s.forgeCharged, Signature: sig}
	}
	accepts := s.offers()
	accepts[1] = batch.Corrective(accepts[1], state, vs)
	s.challenge(w, r, string(x402.ReasonBatchCumulativeAmountMismatch)+": forged", accepts)
}

func (s *channelShop) get(m map[common.Hash]*big.Int, id common.Hash) *big.Int {
	if v := m[id]; v != nil {
		return new(big.Int).Set(v)
	}
	return new(big.Int)
}

// shopClient pays the shop through a channel (and exact as the fallback when withExact).
func shopClient(t *testing.T, store ChannelStore, maxDeposit *big.Int, withExact bool) (*http.Client, *ChannelPayer, *Transport) {
	cp := &ChannelPayer{Signer: &batch.Signer{Key: testKey(t)}, Store: store, MaxDeposit: maxDeposit}
	tr := &Transport{Payers: []Payer{cp}, MaxPerRequest: big.NewInt(1000), Budget: NewBudget(big.NewInt(1_000_000))}
	if withExact {
		tr.Payers = []Payer{&exact.Signer{Key: testKey(t)}, cp}
	}
	return &http.Client{Transport: tr}, cp, tr
}

func getStatus(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *channelShop) record(t *testing.T, cp *ChannelPayer) *channelstore.Record {
	t.Helper()
	_, rec, err := cp.Channel(s.offer.Requirements(s.price))
	if err != nil || rec == nil {
		t.Fatalf("no channel record: %v", err)
	}
	return rec
}

func TestChannelPreferredOnlyWhenItCanPay(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	// No channel yet and no deposit allowed: the exact offer pays, nothing is stored.
	c, _, _ := shopClient(t, store, nil, true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 || s.exactPayments.Load() != 1 {
		t.Fatalf("status %d err %v exact payments %d", st, err, s.exactPayments.Load())
	}
	if rs, _ := store.List(); len(rs) != 0 {
		t.Fatalf("records %v", rs)
	}
	// A cap below the announced minDeposit (10 × price) allows no deposit: exact again.
	c, _, _ = shopClient(t, store, big.NewInt(5000), true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 || s.exactPayments.Load() != 2 {
		t.Fatalf("status %d err %v exact payments %d", st, err, s.exactPayments.Load())
	}
	// With room for the deposit the channel is preferred over the server's first offer (exact).
	c, cp, _ := shopClient(t, store, big.NewInt(10_000), true)
	for i := 0; i < 6; i++ {
		if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	rec := s.record(t, cp)
	wantAmounts(t, rec, 10_000, 10_000, 6000)
	if s.exactPayments.Load() != 2 {
		t.Fatalf("exact payments %d; the channel must be preferred", s.exactPayments.Load())
	}
	// A payer without a deposit cap still uses the funded channel, then falls back when it is spent.
	c, _, _ = shopClient(t, store, nil, true)
	for i := 0; i < 5; i++ {
		getStatus(t, c, s.server.URL)
	}
	if s.exactPayments.Load() != 3 || s.record(t, cp).Charged.Int64() != 10_000 {
		t.Fatalf("exact payments %d, charged %s; want four vouchers then one exact payment", s.exactPayments.Load(), s.record(t, cp).Charged)
	}
}

func TestChannelDepositLimits(t *testing.T) {
	s := newChannelShop(t, big.NewInt(50_000)) // the server asks for a large first deposit
	c, _, _ := shopClient(t, channelstore.NewMemory(), big.NewInt(10_000), false)
	_, err := getStatus(t, c, s.server.URL)
	if !errors.Is(err, ErrNoPayableRequirement) || !errors.Is(err, ErrDepositNotAllowed) || !strings.Contains(err.Error(), "50000") {
		t.Fatalf("a deposit above the cap: %v", err)
	}
	if s.paid.Load() != 0 {
		t.Fatal("a payment was sent")
	}
	// A deposit budget caps the total deposited.
	s = newChannelShop(t, nil)
	c, cp, _ := shopClient(t, channelstore.NewMemory(), big.NewInt(10_000), false)
	cp.DepositBudget = NewBudget(big.NewInt(10_000))
	for i := 0; i < 10; i++ {
		if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	if _, err := getStatus(t, c, s.server.URL); !errors.Is(err, ErrDepositNotAllowed) {
		t.Fatalf("a top-up beyond the deposit budget: %v", err)
	}
	if cp.DepositBudget.Remaining().Sign() != 0 || s.paid.Load() != 10 {
		t.Fatalf("budget left %s, paid requests %d", cp.DepositBudget.Remaining(), s.paid.Load())
	}
}

func TestChannelRefusesUnprovenCorrections(t *testing.T) {
	s := newChannelShop(t, nil)
	c, cp, tr := shopClient(t, channelstore.NewMemory(), big.NewInt(10_000), false)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("open: %d %v", st, err)
	}
	stranger, _ := crypto.GenerateKey()
	cases := []struct {
		name    string
		forge   func()
		charged int64
	}{
		{"voucher signed by someone else", func() { s.forgeWith, s.forgeCharged = stranger, big.NewInt(50_000) }, 1000},
		{"no voucher, above what was signed", func() { s.bareCorrect, s.forgeCharged = true, big.NewInt(50_000) }, 1000},
	}
	for _, tc := range cases {
		s.paid.Store(0)
		tc.forge()
		st, err := getStatus(t, c, s.server.URL)
		if err != nil || st != 402 || s.paid.Load() != 1 {
			t.Fatalf("%s: status %d err %v after %d payments; want the 402 handed back after one", tc.name, st, err, s.paid.Load())
		}
		if got := s.record(t, cp).Charged.Int64(); got != tc.charged {
			t.Fatalf("%s: adopted charged %d", tc.name, got)
		}
		s.forgeWith, s.bareCorrect = nil, false
	}
	// A correction below what the payer signed needs no proof and is adopted, but the retry it
	// earns is the only one: a server that keeps correcting gets its 402 back.
	s.paid.Store(0)
	s.bareCorrect, s.forgeCharged = true, big.NewInt(500)
	if st, _ := getStatus(t, c, s.server.URL); st != 402 || s.paid.Load() != 2 {
		t.Fatalf("status %d after %d payments; want one retry, then the 402", st, s.paid.Load())
	}
	if got := s.record(t, cp).Charged.Int64(); got != 500 {
		t.Fatalf("charged %d; want the adopted 500", got)
	}
	if tr.Budget.Spent().Int64() != 1000 {
		t.Fatalf("budget spent %s; want only the first request's 1000: refused payments are given back", tr.Budget.Spent())
	}
}

func TestChannelUnknownDepositOutcome(t *testing.T) {
	for _, landed := range []bool{true, false} {
		s := newChannelShop(t, nil)
		c, cp, tr := shopClient(t, channelstore.NewMemory(), big.NewInt(10_000), false)
		tr.MaxRetries = -1 // the subject is what the payer records from an answered failure
		s.failNext, s.dropDeposit = 502, !landed
		if st, err := getStatus(t, c, s.server.URL); err != nil || st != 502 {
			t.Fatalf("landed=%v: first request %d %v", landed, st, err)
		}
		if rec := s.record(t, cp); orZero(rec.Unconfirmed).Int64() != 10_000 || orZero(rec.Balance).Sign() != 0 {
			t.Fatalf("landed=%v: record %+v", landed, rec)
		}
		s.paid.Store(0)
		if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
			t.Fatalf("landed=%v: second request %d %v", landed, st, err)
		}
		rec := s.record(t, cp)
		if rec.Unconfirmed != nil {
			t.Fatalf("landed=%v: still unconfirmed", landed)
		}
		// Landed: one voucher. Not landed: the voucher is refused and one deposit follows.
		wantPaid := map[bool]int64{true: 1, false: 2}[landed]
		if s.paid.Load() != wantPaid {
			t.Fatalf("landed=%v: %d paid requests, want %d", landed, s.paid.Load(), wantPaid)
		}
		wantAmounts(t, rec, 10_000, 10_000, 1000)
		if got := s.get(s.balance, rec.ChannelID); got.Int64() != 10_000 {
			t.Fatalf("landed=%v: the server holds %s; one deposit of 10000 only", landed, got)
		}
	}
}

// TestChannelSerialisesConcurrentPayments: one channel pays one request at a time, so concurrent
// requests never race each other into corrective 402s.
func TestChannelSerialisesConcurrentPayments(t *testing.T) {
	s := newChannelShop(t, nil)
	c, cp, _ := shopClient(t, channelstore.NewMemory(), big.NewInt(20_000), false)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := getStatus(t, c, s.server.URL); err == nil && st == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 12 || s.paid.Load() != 12 {
		t.Fatalf("%d served after %d payments; want 12 and 12", ok.Load(), s.paid.Load())
	}
	wantAmounts(t, s.record(t, cp), 20_000, 20_000, 12_000)
}
