package batch

import (
	"encoding/json"
	"math/big"
	"testing"
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
