package main

import (
	"bufio"
	"bytes"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// TestVoucherPlanPaysEveryChannelInSequence sends the plan's requests, signed on the spot and
// pre-built mixed, through the verifier the gateway uses, each channel starting where its
// deposit left it: every voucher must be the next one due on its channel.
func TestVoucherPlanPaysEveryChannelInSequence(t *testing.T) {
	price := big.NewInt(1000)
	accounts := devkeys.DevAccounts(firstPayer + payerCount) // public test mnemonic
	offer := batch.Offer{
		Network: "eip155:1337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		Name: "USD Coin", Version: "2", PayTo: accounts[1].Address, ReceiverAuthorizer: accounts[0].Address,
		WithdrawDelay: 900, MaxTimeoutSeconds: 60,
	}
	set := &channelSet{offer: offer.Requirements(price), price: price}
	const channels, workers = 5, 2
	for c := range channels {
		set.signers = append(set.signers, &batch.Signer{
			Key: accounts[firstPayer+c%payerCount].Key, Salt: common.BigToHash(big.NewInt(int64(c/payerCount + 1))),
		})
	}
	verifier, err := batch.NewVerifier(batch.VerifierConfig{Network: offer.Network, Settlement: escrow.BatchSettlementAddress})
	if err != nil {
		t.Fatal(err)
	}
	terms := offer.Terms(price)
	charged := map[common.Hash]*big.Int{} // what the gateway has charged per channel
	for _, s := range set.signers {
		cfg, err := s.ChannelConfig(set.offer)
		if err != nil {
			t.Fatal(err)
		}
		charged[verifier.ChannelID(cfg)] = new(big.Int).Set(price) // the deposit's voucher
	}
	plan := newVoucherPlan(set, workers, "127.0.0.1:9")
	pay := func(w int) (inline bool) {
		t.Helper()
		raw, inline, err := plan.request(w, 0)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil || req.URL.Path != quotePath {
			t.Fatalf("request %q: %v", raw, err)
		}
		pp, err := x402.DecodePaymentPayload(req.Header.Get(x402.HeaderPaymentSignature), 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := batch.ParsePaymentPayload(pp)
		if err != nil {
			t.Fatal(err)
		}
		id := verifier.ChannelID(p.ChannelConfig)
		snap := batch.Snapshot{ChargedCumulative: charged[id], Balance: big.NewInt(1e12)}
		if _, err := verifier.VerifyVoucher(terms, snap, p); err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
		charged[id] = p.Voucher.MaxClaimableAmount
		return inline
	}
	for range 3 { // calibration: signed as they go
		for w := range workers {
			if !pay(w) {
				t.Fatal("a request before presigning was not signed on the spot")
			}
		}
	}
	if _, err := plan.presign(4); err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // four pre-built each, then signed on the spot again
		for w := range workers {
			if inline := pay(w); inline != (i >= 4) {
				t.Fatalf("request %d of worker %d: signed on the spot %v", i, w, inline)
			}
		}
	}
	if got := plan.inline.Load(); got != 3*workers+2*workers {
		t.Fatalf("signed on the spot %d times, want %d", got, 5*workers)
	}
	total := new(big.Int)
	for _, c := range charged {
		total.Add(total, c)
	}
	// 5 deposits' vouchers plus 18 requests, one price each.
	if want := big.NewInt(1000 * (channels + 9*workers)); total.Cmp(want) != 0 {
		t.Fatalf("charged %s in total, want %s", total, want)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(201-i)*time.Microsecond)
	}
	s := summarize(d)
	if s.P50 != 100 || s.P99 != 198 || s.P999 != 200 || s.Max != 200 || s.Mean != 100.5 {
		t.Fatalf("summary %+v", s)
	}
	if one := summarize([]time.Duration{7 * time.Microsecond}); one.P50 != 7 || one.P99 != 7 {
		t.Fatalf("one sample %+v", one)
	}
}
