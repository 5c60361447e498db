package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

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

// funds is what the client knows of the settler's balance.
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

// CheckSettlerFunds reads the settler's balance and today's fees, logs when the balance crosses
// the low-balance threshold or falls below one settlement (once per crossing), and returns a
// *FundingError while the balance cannot pay for one settlement.
func (c *Client) CheckSettlerFunds(ctx context.Context) error {
	if c.sender == nil {
		return ErrReadOnly
	}
	f, err := c.currentFees(ctx)
	if err != nil {
		return err
	}
	balance, err := c.SettlerBalance(ctx)
	if err != nil {
		return fmt.Errorf("evm: settler balance: %w", err)
	}
	if short := c.observeFunds(balance, f); short != nil {
		return short
	}
	return nil
}

// RequireSettlerFunds is the start-up check: an error when the settler holds no ETH at all,
// saying how to fund it. A balance that is merely low is logged.
func (c *Client) RequireSettlerFunds(ctx context.Context) error {
	err := c.CheckSettlerFunds(ctx)
	var short *FundingError
	if errors.As(err, &short) && short.Balance.Sign() > 0 {
		return nil // logged; exact payments get 503 until it is funded
	}
	return err
}

// SettlerFundsError is the *FundingError of the last balance check or send that found the
// settler unable to pay for a settlement, or nil.
func (c *Client) SettlerFundsError() error {
	if c.sender == nil {
		return nil
	}
	st := &c.sender.funds
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.short == nil {
		return nil
	}
	return st.short
}

// WatchSettlerFunds checks the settler's balance every interval until ctx ends, every 2 s while
// it cannot pay for a settlement, so that payments resume soon after it is funded.
func (c *Client) WatchSettlerFunds(ctx context.Context, every time.Duration) {
	if c.sender == nil {
		return
	}
	for {
		wait := every
		err := c.CheckSettlerFunds(ctx)
		if errors.Is(err, txn.ErrSettlerUnfunded) {
			wait = min(every, 2*time.Second)
		} else if err != nil && ctx.Err() == nil {
			c.log.Warn("checking the settler's gas balance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// observeFunds records a balance read with the fees of the moment and logs level changes. It
// returns the funding error when the balance cannot pay for one settlement.
func (c *Client) observeFunds(balance *big.Int, f fees) *FundingError {
	per := new(big.Int).Mul(big.NewInt(settlementGas), f.cap)
	low := c.opts.MinGasBalance
	if low == nil {
		low = new(big.Int).Mul(per, big.NewInt(LowBalanceSettlements))
	}
	level := fundsOK
	var short *FundingError
	switch {
	case balance.Cmp(per) < 0:
		level = fundsShort
		short = &FundingError{Address: c.sender.from, ChainID: c.ChainID(), Balance: balance, PerSettlement: per}
	case balance.Cmp(low) < 0:
		level = fundsLow
	}
	st := &c.sender.funds
	st.mu.Lock()
	was := st.level
	st.balance, st.spent, st.level, st.short = new(big.Int).Set(balance), new(big.Int), level, short
	st.mu.Unlock()
	if level == was {
		return short
	}
	attrs := []any{"settler", c.sender.from, "chain_id", c.chainID, "balance_eth", FormatEther(balance),
		"per_settlement_eth", FormatEther(per), "warn_below_eth", FormatEther(low)}
	switch level {
	case fundsShort:
		c.log.Error("settler cannot pay for settlement gas: exact payments are refused (503) until it is funded; "+short.Error(), attrs...)
	case fundsLow:
		c.log.Warn("settler gas balance is low: fund it before settlements stop", attrs...)
	default:
		if was != fundsUnknown {
			c.log.Info("settler gas balance is sufficient again", attrs...)
		}
	}
	return short
}

// affordLocked checks, before a transaction is signed, that the settler can pay need wei on top
// of what its transactions in flight reserve. The balance is read again only when the last one
// known no longer covers it, so a well-funded settler pays no extra call per send. The caller
// holds s.mu.
func (s *sender) affordLocked(ctx context.Context, need *big.Int, f fees) error {
	inflight := s.inflightCost()
	if left := s.funds.left(); left != nil && left.Sub(left, inflight).Cmp(need) >= 0 {
		return nil
	}
	balance, err := s.c.SettlerBalance(ctx)
	if err != nil {
		return nil // unknown: the node's own check decides
	}
	short := s.c.observeFunds(balance, f)
	if new(big.Int).Sub(balance, inflight).Cmp(need) >= 0 {
		return nil
	}
	if short == nil {
		short = &FundingError{Address: s.from, ChainID: s.c.ChainID(), Balance: balance, PerSettlement: need}
	}
	return fmt.Errorf("%w: %w", txn.ErrNotSent, short)
}

// refusedForFunds re-reads the balance after a node refused a transaction for insufficient
// funds, so that the refusal becomes a clear funding error and the client's state says so.
func (s *sender) refusedForFunds(ctx context.Context, f fees, cause error) error {
	balance, err := s.c.SettlerBalance(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w: %w", txn.ErrNotSent, txn.ErrSettlerUnfunded, cause)
	}
	if short := s.c.observeFunds(balance, f); short != nil {
		return fmt.Errorf("%w: %w (node: %w)", txn.ErrNotSent, short, cause)
	}
	// Enough for one settlement, not for this one on top of those pending.
	return fmt.Errorf("%w: %w: node refused: %w", txn.ErrNotSent, txn.ErrSettlerUnfunded, cause)
}
