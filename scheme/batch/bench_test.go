package batch

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/payper/payper/x402"
)

// BenchmarkVerifyVoucher is the request hot path: a parsed voucher checked against the terms
// and a channel snapshot (channel id cached, one keccak-based digest, one ECDSA recovery).
func BenchmarkVerifyVoucher(b *testing.B) {
	w := newWorld(b)
	p := w.voucher(2000)
	snap := snapshot(1000, 10000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.ver.VerifyVoucher(w.terms, snap, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAndVerifyVoucher adds the strict parse of the payload JSON.
func BenchmarkParseAndVerifyVoucher(b *testing.B) {
	w := newWorld(b)
	raw, _ := json.Marshal(w.voucher(2000))
	snap := snapshot(1000, 10000, 0)
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParsePayload(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.ver.VerifyVoucher(w.terms, snap, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChannelIDUncached is what the cache saves per request.
func BenchmarkChannelIDUncached(b *testing.B) {
	w := newWorld(b)
	cfg := w.voucher(1).ChannelConfig
	sep := w.sep
	b.ReportAllocs()
	for b.Loop() {
		_ = cfg.ChannelID(sep)
	}
}

func BenchmarkVerifyDeposit(b *testing.B) {
	w := newWorld(b)
	p := w.deposit(10000, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.ver.VerifyDeposit(w.terms, Snapshot{Balance: new(big.Int)}, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeVoucherHeader is everything the gateway does to a PAYMENT-SIGNATURE header
// before the signature check: base64, the strict envelope decode and the strict payload parse.
func BenchmarkDecodeVoucherHeader(b *testing.B) {
	w := newWorld(b)
	req := w.req()
	raw, err := json.Marshal(w.voucher(2000))
	if err != nil {
		b.Fatal(err)
	}
	header, err := x402.EncodeHeader(x402.PaymentPayload{
		X402Version: x402.Version, Resource: &x402.ResourceInfo{URL: "http://127.0.0.1:8402/v1/quote", MimeType: "application/json"},
		Accepted: req, Payload: raw,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(header)))
	for b.Loop() {
		pp, err := x402.DecodePaymentPayload(header, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParsePaymentPayload(pp); err != nil {
			b.Fatal(err)
		}
	}
}
