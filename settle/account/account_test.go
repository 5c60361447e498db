package account

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/settle/txn"
)

// The sender's behaviour against real nodes (lost, stuck and refused transactions, nonce gaps,
// rewinds, fee ceilings, an unfunded settler) is tested through chain/evm's Client, its node, in
// chain/evm (TestNonceGapRepaired, TestCachedNonceAheadAfterRewind, TestStuckTransactionReplaced,
// ...). These are the pure parts.

// quietNode is a node that is never asked anything.
type quietNode struct{}

func (quietNode) ChainID() *big.Int { return big.NewInt(1337) }
func (quietNode) Nonces(context.Context, common.Address) (uint64, uint64, error) {
	return 0, 0, errors.New("not asked")
}
func (quietNode) SuggestFees(context.Context) (*big.Int, *big.Int, error) {
	return nil, nil, errors.New("not asked")
}
func (quietNode) BalanceAt(context.Context, common.Address) (*big.Int, error) {
	return nil, errors.New("not asked")
}
func (quietNode) EstimateGas(context.Context, ethereum.CallMsg) (uint64, error) {
	return 0, errors.New("not asked")
}
func (quietNode) Broadcast(context.Context, *types.Transaction) (Broadcast, error) {
	return BroadcastNotDelivered, errors.New("not asked")
}

type logBuffer struct{ strings.Builder }

// TestFundsLevelsAreLoggedOncePerCrossing: a balance that recovers is logged as such, and one
// short of a settlement is an error the sender reports until the next reading.
func TestFundsLevelsAreLoggedOncePerCrossing(t *testing.T) {
	logs := &logBuffer{}
	key, _ := crypto.GenerateKey()
	hundredETH := new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))
	s := NewSender(quietNode{}, key, Options{MinGasBalance: new(big.Int).Add(hundredETH, big.NewInt(1)),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f := fees{tip: big.NewInt(1), cap: big.NewInt(1e9)}
	for range 2 {
		if short := s.observeFunds(hundredETH, f); short != nil {
			t.Fatalf("a low but usable balance is short: %v", short)
		}
	}
	if n := strings.Count(logs.String(), "settler gas balance is low"); n != 1 {
		t.Fatalf("low balance logged %d times, want once:\n%s", n, logs)
	}
	s.observeFunds(new(big.Int).Mul(hundredETH, big.NewInt(2)), f)
	if !strings.Contains(logs.String(), "sufficient again") || s.FundsError() != nil {
		t.Fatalf("recovery not logged:\n%s", logs)
	}
	s.observeFunds(big.NewInt(1), f)
	var short *FundingError
	if !errors.Is(s.FundsError(), txn.ErrSettlerUnfunded) || !errors.As(s.FundsError(), &short) || !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a settler short of one settlement is not reported:\n%s", logs)
	}
	if short.ChainID.Int64() != 1337 || short.Address != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("funding error names %s on chain %s", short.Address, short.ChainID)
	}
}

func TestBumpedFees(t *testing.T) {
	gwei := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e9)) }
	tests := []struct {
		name         string
		old, fresh   fees
		ceiling      *big.Int
		wantTip      *big.Int
		wantCap      *big.Int
		wantReplaced bool
	}{
		{"an eighth more", fees{gwei(1), gwei(10)}, fees{gwei(1), gwei(10)}, nil, big.NewInt(1_125_000_000), big.NewInt(11_250_000_000), true},
		{"today's fees when higher", fees{gwei(1), gwei(10)}, fees{gwei(2), gwei(30)}, nil, gwei(2), gwei(30), true},
		{"one wei tip still rises", fees{big.NewInt(1), big.NewInt(9)}, fees{big.NewInt(1), big.NewInt(9)}, nil, big.NewInt(2), big.NewInt(10), true},
		{"held to the ceiling", fees{gwei(1), gwei(10)}, fees{gwei(1), gwei(40)}, gwei(20), big.NewInt(1_125_000_000), gwei(20), true},
		{"no room under the ceiling", fees{gwei(1), gwei(10)}, fees{gwei(1), gwei(10)}, big.NewInt(10_500_000_000), nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bumped(tt.old, tt.fresh, tt.ceiling)
			if ok != tt.wantReplaced {
				t.Fatalf("ok %v, want %v (%s / %s)", ok, tt.wantReplaced, got.tip, got.cap)
			}
			if ok && (got.tip.Cmp(tt.wantTip) != 0 || got.cap.Cmp(tt.wantCap) != 0) {
				t.Fatalf("tip %s cap %s, want %s %s", got.tip, got.cap, tt.wantTip, tt.wantCap)
			}
			if ok && (!enoughRaise(tt.old.tip, got.tip) || !enoughRaise(tt.old.cap, got.cap)) {
				t.Fatal("a pool would refuse the replacement")
			}
		})
	}
}

func TestFormatEther(t *testing.T) {
	for wei, want := range map[int64]string{0: "0", 1: "0.000000000000000001", 1e18: "1", 15e17: "1.5", 21e14: "0.0021", -5e17: "-0.5"} {
		if got := FormatEther(big.NewInt(wei)); got != want {
			t.Errorf("FormatEther(%d) = %q, want %q", wei, got, want)
		}
	}
}
