package escrow_test

import (
	"crypto/ecdsa"
	"testing"

	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/node"

	"github.com/payper/payper/contracts/escrow"
)

// settleGasLimit is the fixed gas limit the stock x402 facilitator (npm @x402/evm 2.27.0) gives
// every settle transaction; a settle that needs more fails there.
const settleGasLimit = 120_000

// TestGas records the gas of the common operations, on the developer-mode forks go-ethereum's
// dev mode (and so the embedded dev chain) enables and on the forks public chains run, and
// checks the limits stock clients assume. The numbers go to the test log
// (go test -v -run TestGas ./contracts/escrow).
func TestGas(t *testing.T) {
	for _, rules := range []struct {
		name    string
		options []func(*node.Config, *ethconfig.Config)
		strict  bool // enforce the limits stock clients assume
	}{
		{"dev chain forks", nil, false},
		{"Osaka", []func(*node.Config, *ethconfig.Config){osakaRules}, true},
	} {
		t.Run(rules.name, func(t *testing.T) {
			e := newEnv(t, rules.options...)
			keys := []*ecdsa.PrivateKey{payerKey, payer2Key}
			configs := make([]escrow.ChannelConfig, 10)
			for i := range configs {
				configs[i] = e.config(keys[i%2], byte(i))
				r := e.deposit(keys[i%2], configs[i], 100_000)
				if i == 0 {
					t.Logf("deposit, new channel (ERC-3009 collector): %d gas", r.GasUsed)
				}
			}
			r := e.deposit(payerKey, configs[0], 50_000)
			t.Logf("deposit, top-up: %d gas", r.GasUsed)

			r = e.claimSigned(e.row(payerKey, configs[0], 1_000, 1_000))
			t.Logf("claimWithSignature, 1 channel (receiver's first claim): %d gas", r.GasUsed)
			r = e.mustSucceed(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, configs[0], 2_000, 2_000)}))
			t.Logf("claim by the receiver, 1 channel: %d gas", r.GasUsed)

			rows := make([]escrow.VoucherClaim, len(configs))
			for i, c := range configs {
				rows[i] = e.row(keys[i%2], c, 3_000, 3_000)
			}
			r = e.claimSigned(rows...)
			if n := len(claimedEvents(t, r)); n != 10 {
				t.Fatalf("%d channels claimed, want 10", n)
			}
			t.Logf("claimWithSignature, 10 channels: %d gas", r.GasUsed)

			r = e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
			t.Logf("settle (receiver's first payout): %d gas", r.GasUsed)
			switch {
			case r.GasUsed <= settleGasLimit:
			case rules.strict:
				t.Errorf("settle used %d gas; the stock facilitator allows %d", r.GasUsed, settleGasLimit)
			default:
				// The unreleased fork's state-gas metering prices the token transfer's new
				// balance slot far higher; nothing in the contract can avoid that.
				t.Logf("NOTE: above the stock facilitator's settle gas limit of %d on these forks", settleGasLimit)
			}
			wantBalance(t, e, receiver, 30_000)
			e.claimSigned(e.row(payerKey, configs[0], 4_000, 4_000))
			r = e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
			t.Logf("settle (later payout): %d gas", r.GasUsed)
		})
	}
}
