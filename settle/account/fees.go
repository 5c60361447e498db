package account

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"
)

// fees are an EIP-1559 transaction's prices per gas, in wei.
type fees struct {
	tip, cap *big.Int
}

func feesOf(tx *types.Transaction) fees { return fees{tip: tx.GasTipCap(), cap: tx.GasFeeCap()} }

// currentFees prices a transaction now: the node's suggested tip, and a fee cap of twice the
// latest base fee plus the tip, so that it stays includable while the base fee rises for a few
// blocks. Both are then held to the MaxFeePerGas ceiling.
func (s *Sender) currentFees(ctx context.Context) (fees, error) {
	tip, feeCap, err := s.node.SuggestFees(ctx)
	if err != nil {
		return fees{}, fmt.Errorf("fees: %w", err)
	}
	f := fees{tip: tip, cap: feeCap}
	capped, within := f.within(s.opts.MaxFeePerGas)
	if was := s.aboveCeiling.Swap(!within); was != !within {
		if within {
			s.log.Info("fees are within the configured ceiling again", "fee_cap", f.cap)
		} else {
			s.log.Warn("fees are above the configured ceiling; transactions are priced at the ceiling and may wait",
				"fee_cap", f.cap, "max_fee_per_gas", s.opts.MaxFeePerGas)
		}
	}
	return capped, nil
}

// within returns f held to ceiling (nil: none), and whether it was already within.
func (f fees) within(ceiling *big.Int) (fees, bool) {
	if ceiling == nil || f.cap.Cmp(ceiling) <= 0 {
		return f, true
	}
	out := fees{tip: f.tip, cap: new(big.Int).Set(ceiling)}
	if out.tip.Cmp(out.cap) > 0 {
		out.tip = new(big.Int).Set(out.cap)
	}
	return out, false
}

// bumped returns the fees of a replacement for a transaction priced old: each price raised by at
// least an eighth (a node's pool takes a replacement only when both its tip and its fee cap are
// at least 10 % higher), and no lower than fresh, today's prices. ok is false when the ceiling
// leaves no room for such a raise.
func bumped(old, fresh fees, ceiling *big.Int) (_ fees, ok bool) {
	raise := func(v *big.Int) *big.Int {
		step := new(big.Int).Rsh(v, 3)
		if step.Sign() == 0 {
			step.SetInt64(1)
		}
		return step.Add(step, v)
	}
	next := fees{tip: bigMax(raise(old.tip), fresh.tip), cap: bigMax(raise(old.cap), fresh.cap)}
	if next.tip.Cmp(next.cap) > 0 {
		next.cap = new(big.Int).Set(next.tip)
	}
	next, _ = next.within(ceiling)
	return next, enoughRaise(old.tip, next.tip) && enoughRaise(old.cap, next.cap)
}

// enoughRaise reports whether next is above old by the 10 % a go-ethereum pool requires of a
// replacement.
func enoughRaise(old, next *big.Int) bool {
	min := new(big.Int).Mul(old, big.NewInt(110))
	min.Div(min, big.NewInt(100))
	return next.Cmp(old) > 0 && next.Cmp(min) >= 0
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}
