package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"runtime"
	"testing"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// verifyTargetMicros is the target for one voucher verification on one core.
const verifyTargetMicros = 100

// verifyResult is the voucher verification micro-benchmark: the same work as
// scheme/batch's BenchmarkVerifyVoucher (terms and a channel snapshot against a parsed voucher:
// channel id from the cache, one digest, one ECDSA recovery), plus the two decoding steps the
// request path adds before it.
type verifyResult struct {
	VerifyMicros        float64 `json:"verifyMicros"`
	VerifyAllocs        int64   `json:"verifyAllocsPerOp"`
	ParseVerifyMicros   float64 `json:"parseAndVerifyMicros"`
	HeaderToCheckMicros float64 `json:"headerDecodeParseVerifyMicros"`
	GOMAXPROCS          int     `json:"gomaxprocs"`
}

// benchVerify measures on one core (GOMAXPROCS=1, as `go test -cpu 1`), with a voucher of the
// first channel checked against the snapshot it would meet right after its deposit.
func benchVerify(set *channelSet) (verifyResult, error) {
	offer := set.offer
	verifier, err := batch.NewVerifier(batch.VerifierConfig{Network: offer.Network, Settlement: escrow.BatchSettlementAddress})
	if err != nil {
		return verifyResult{}, err
	}
	terms, err := batch.TermsFromRequirements(offer)
	if err != nil {
		return verifyResult{}, err
	}
	cumulative := new(big.Int).Mul(set.price, big.NewInt(2))
	payload, err := set.signers[0].VoucherPayload(offer, cumulative)
	if err != nil {
		return verifyResult{}, err
	}
	header, err := set.voucherHeader(0, 0)
	if err != nil {
		return verifyResult{}, err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return verifyResult{}, err
	}
	snap := batch.Snapshot{
		ChargedCumulative: set.price,
		Balance:           new(big.Int).Mul(set.price, big.NewInt(depositRequests)),
		TotalClaimed:      new(big.Int),
	}
	if _, err := verifier.VerifyVoucher(terms, snap, payload); err != nil {
		return verifyResult{}, fmt.Errorf("verify a valid voucher: %w", err)
	}

	previous := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(previous)
	var failed error
	verify := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verifier.VerifyVoucher(terms, snap, payload); err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	parseVerify := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			p, err := batch.ParsePayload(raw)
			if err == nil {
				_, err = verifier.VerifyVoucher(terms, snap, p)
			}
			if err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	fromHeader := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			pp, err := x402.DecodePaymentPayload(header, 0)
			var p *batch.Payload
			if err == nil {
				p, err = batch.ParsePaymentPayload(pp)
			}
			if err == nil {
				_, err = verifier.VerifyVoucher(terms, snap, p)
			}
			if err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	if failed != nil {
		return verifyResult{}, fmt.Errorf("verification benchmark: %w", failed)
	}
	return verifyResult{
		VerifyMicros:        nsToMicros(verify.NsPerOp()),
		VerifyAllocs:        verify.AllocsPerOp(),
		ParseVerifyMicros:   nsToMicros(parseVerify.NsPerOp()),
		HeaderToCheckMicros: nsToMicros(fromHeader.NsPerOp()),
		GOMAXPROCS:          1,
	}, nil
}

func nsToMicros(ns int64) float64 { return float64(ns) / 1e3 }
