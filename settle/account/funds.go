package account

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/settle/txn"
)

// LowBalanceSettlements is how many settlements the settler's balance should pay for, at current
// fees, before a low-balance warning is logged, when Options.MinGasBalance is not set.
const LowBalanceSettlements = 100

// settlementGas is the gas limit a typical settlement reserves: a transferWithAuthorization
// estimate (60 to 80 thousand gas) with the headroom a send adds. Funding advice is priced with it.
const settlementGas = 100_000

// FundingError says that the settler cannot pay for gas, and how to fund it. It matches
// txn.ErrSettlerUnfunded.
type FundingError struct {
	Address common.Address
	ChainID *big.Int
	Balance *big.Int // wei
	// PerSettlement is what one settlement reserves at current fees (gas limit × fee cap), in wei.
	PerSettlement *big.Int
}

func (e *FundingError) Error() string {
	suggest := new(big.Int).Mul(e.PerSettlement, big.NewInt(LowBalanceSettlements))
	return fmt.Sprintf("settler %s holds %s ETH on chain %s, less than the %s ETH one settlement reserves at current fees: "+
		"send it about %s ETH, enough for about %d settlements",
		e.Address.Hex(), FormatEther(e.Balance), e.ChainID, FormatEther(e.PerSettlement), FormatEther(suggest), LowBalanceSettlements)
}

// Is makes a FundingError match txn.ErrSettlerUnfunded.
func (e *FundingError) Is(target error) bool { return target == txn.ErrSettlerUnfunded }

// FormatEther writes wei as a decimal number of ETH, without trailing zeros.
func FormatEther(wei *big.Int) string {
	if wei == nil {
		return "?"
	}
	s := new(big.Int).Abs(wei).String()
	if len(s) <= 18 {
		s = strings.Repeat("0", 19-len(s)) + s
	}
	whole, frac := s[:len(s)-18], strings.TrimRight(s[len(s)-18:], "0")
	if wei.Sign() < 0 {
		whole = "-" + whole
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// fundsLevel is how the settler's balance compares with what settlements need.
type fundsLevel int

const (
	fundsUnknown fundsLevel = iota
	fundsOK
	fundsLow   // below the warning threshold
	fundsShort // below one settlement
)

// funds is what the sender knows of the settler's balance.
type funds struct {
	mu      sync.Mutex
	balance *big.Int // last read, nil before the first
	spent   *big.Int // reserved by the settler's transactions mined since that read: an upper bound
	level   fundsLevel
	short   *FundingError
}

// spend records a mined transaction's reservation against the last balance read.
func (f *funds) spend(wei *big.Int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.spent != nil {
		f.spent.Add(f.spent, wei)
	}
}

// left is the last balance read less what was spent since, or nil when never read.
func (f *funds) left() *big.Int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.balance == nil {
		return nil
	}
	return new(big.Int).Sub(f.balance, f.spent)
}

// CheckFunds reads the settler's balance and today's fees, logs when the balance crosses the
// low-balance threshold or falls below one settlement (once per crossing), and returns a
// *FundingError while the balance cannot pay for one settlement.
func (s *Sender) CheckFunds(ctx context.Context) error {
	f, err := s.currentFees(ctx)
	if err != nil {
		return err
	}
	balance, err := s.node.BalanceAt(ctx, s.from)
	if err != nil {
		return fmt.Errorf("settler balance: %w", err)
	}
	if short := s.observeFunds(balance, f); short != nil {
		return short
	}
	return nil
}

// FundsError is the *FundingError of the last balance check or send that found the settler
// unable to pay for a settlement, or nil.
func (s *Sender) FundsError() error {
	st := &s.funds
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.short == nil {
		return nil
	}
	return st.short
}

// observeFunds records a balance read with the fees of the moment and logs level changes. It
// returns the funding error when the balance cannot pay for one settlement.
func (s *Sender) observeFunds(balance *big.Int, f fees) *FundingError {
	per := new(big.Int).Mul(big.NewInt(settlementGas), f.cap)
	low := s.opts.MinGasBalance
	if low == nil {
		low = new(big.Int).Mul(per, big.NewInt(LowBalanceSettlements))
	}
	level := fundsOK
	var short *FundingError
	switch {
	case balance.Cmp(per) < 0:
		level = fundsShort
		short = &FundingError{Address: s.from, ChainID: new(big.Int).Set(s.chainID), Balance: balance, PerSettlement: per}
	case balance.Cmp(low) < 0:
		level = fundsLow
	}
	st := &s.funds
	st.mu.Lock()
	was := st.level
	st.balance, st.spent, st.level, st.short = new(big.Int).Set(balance), new(big.Int), level, short
	st.mu.Unlock()
	if level == was {
		return short
	}
	attrs := []any{"settler", s.from, "chain_id", s.chainID, "balance_eth", FormatEther(balance),
		"per_settlement_eth", FormatEther(per), "warn_below_eth", FormatEther(low)}
	switch level {
	case fundsShort:
		s.log.Error("settler cannot pay for settlement gas: exact payments are refused (503) until it is funded; "+short.Error(), attrs...)
	case fundsLow:
		s.log.Warn("settler gas balance is low: fund it before settlements stop", attrs...)
	default:
		if was != fundsUnknown {
			s.log.Info("settler gas balance is sufficient again", attrs...)
		}
	}
	return short
}

// affordLocked checks, before a transaction is signed, that the settler can pay need wei on top
// of what its transactions in flight reserve. The balance is read again only when the last one
// known no longer covers it, so a well-funded settler pays no extra call per send. The caller
// holds s.mu.
func (s *Sender) affordLocked(ctx context.Context, need *big.Int, f fees) error {
	inflight := s.inflightCost()
	if left := s.funds.left(); left != nil && left.Sub(left, inflight).Cmp(need) >= 0 {
		return nil
	}
	balance, err := s.node.BalanceAt(ctx, s.from)
	if err != nil {
		return nil // unknown: the node's own check decides
	}
	short := s.observeFunds(balance, f)
	if new(big.Int).Sub(balance, inflight).Cmp(need) >= 0 {
		return nil
	}
	if short == nil {
		short = &FundingError{Address: s.from, ChainID: new(big.Int).Set(s.chainID), Balance: balance, PerSettlement: need}
	}
	return fmt.Errorf("%w: %w", txn.ErrNotSent, short)
}

// refusedForFunds re-reads the balance after a node refused a transaction for insufficient
// funds, so that the refusal becomes a clear funding error and the sender's state says so.
func (s *Sender) refusedForFunds(ctx context.Context, f fees, cause error) error {
	balance, err := s.node.BalanceAt(ctx, s.from)
	if err != nil {
		return fmt.Errorf("%w: %w: %w", txn.ErrNotSent, txn.ErrSettlerUnfunded, cause)
	}
	if short := s.observeFunds(balance, f); short != nil {
		return fmt.Errorf("%w: %w (node: %w)", txn.ErrNotSent, short, cause)
	}
	// Enough for one settlement, not for this one on top of those pending.
	return fmt.Errorf("%w: %w: node refused: %w", txn.ErrNotSent, txn.ErrSettlerUnfunded, cause)
}
