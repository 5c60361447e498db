package account

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/settle/txn"
)

// Node is what the settler account needs of a chain's nodes. chain/evm's Client is one.
type Node interface {
	// ChainID is the chain the nodes serve.
	ChainID() *big.Int
	// Nonces reads the account's latest and pending nonces, on one node, at one moment.
	Nonces(ctx context.Context, addr common.Address) (latest, pending uint64, err error)
	// SuggestFees is today's EIP-1559 price of a transaction: a tip, and a fee cap that stays
	// includable while the base fee rises for a few blocks.
	SuggestFees(ctx context.Context) (tip, feeCap *big.Int, err error)
	// BalanceAt reads the account's ETH balance, in wei.
	BalanceAt(ctx context.Context, addr common.Address) (*big.Int, error)
	// EstimateGas estimates a call's gas; a call the EVM reverts is a *txn.RevertError.
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	// Broadcast sends a signed transaction to the nodes, to as many as it takes for a certain
	// answer, and says what became of it; err is the answer behind a refused or unknown outcome.
	Broadcast(ctx context.Context, tx *types.Transaction) (Broadcast, error)
}

// Broadcast is what an attempt to hand a signed transaction to the nodes says about it.
type Broadcast int

const (
	// BroadcastUnknown: the transaction may be in a pool (a transport failure, a timeout, an
	// answer that is not a known refusal). Its hash is waited on, never written off.
	BroadcastUnknown Broadcast = iota
	// BroadcastSent: a node holds the transaction.
	BroadcastSent
	// BroadcastRefused: a node validated the transaction and rejected it, and none holds it.
	BroadcastRefused
	// BroadcastNotDelivered: no node can have received the transaction.
	BroadcastNotDelivered Broadcast = -1
)

// Options configure a Sender.
type Options struct {
	// RecheckEvery is how often, while a transaction waits to be mined, the account's nonces
	// are compared with the chain's (see Repair).
	RecheckEvery time.Duration
	// ReplaceAfter is how long a transaction may stay unmined before it is replaced by one with
	// the same nonce and fees raised by an eighth.
	ReplaceAfter time.Duration
	// MaxFeePerGas caps the fee per gas of any transaction and replacement, in wei; nil for no cap.
	MaxFeePerGas *big.Int
	// MinGasBalance is the balance, in wei, below which a warning is logged; nil means enough for
	// LowBalanceSettlements settlements at current fees.
	MinGasBalance *big.Int
	Now           func() time.Time // default time.Now
	Logger        *slog.Logger
}

// Sender owns the settler account's nonces: one allocator per key and process, so concurrent
// settlements get consecutive nonces. It remembers every transaction it signed until it is mined
// (its flights), so that a lost one can be re-broadcast, a slow one replaced, and a nonce gap
// filled (see repair.go); it prices transactions under a fee ceiling and refuses those the
// account cannot pay gas for.
type Sender struct {
	node    Node
	opts    Options
	log     *slog.Logger
	key     *ecdsa.PrivateKey
	from    common.Address
	chainID *big.Int
	signer  types.Signer

	// aboveCeiling: fees were last found above MaxFeePerGas (logged when it changes).
	aboveCeiling atomic.Bool

	// mu orders allocation, signing, broadcasting and repair.
	mu         sync.Mutex
	next       uint64 // the nonce the next transaction gets
	synced     bool   // next was checked against the chain since the last doubt
	lastRepair time.Time

	// track guards the records below; taken after mu when both are needed. Waiters take only it.
	track   sync.Mutex
	flights map[uint64]*Flight      // signed and not yet seen mined, by nonce
	landed  *landedFlights          // mined recently, kept for a chain that rewinds
	byHash  map[common.Hash]*Flight // every variant of every flight and landed flight

	funds funds
}

// NewSender returns the sender of key's account on node's chain.
func NewSender(node Node, key *ecdsa.PrivateKey, opts Options) *Sender {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	chainID := node.ChainID()
	return &Sender{
		node: node, opts: opts, log: opts.Logger, key: key, from: crypto.PubkeyToAddress(key.PublicKey),
		chainID: chainID, signer: types.LatestSignerForChainID(chainID),
		flights: map[uint64]*Flight{}, landed: newLandedFlights(landedKept), byHash: map[common.Hash]*Flight{},
	}
}

// Address is the settler account's address.
func (s *Sender) Address() common.Address { return s.from }

func (s *Sender) now() time.Time { return s.opts.Now() }

// txCall is what a transaction does; every variant signed for its nonce does the same.
type txCall struct {
	to    common.Address
	data  []byte
	value *big.Int
	gas   uint64
}

// Send signs a transaction calling to with data from the settler account, hands its hash to
// onSigned (a write-ahead record; if it fails nothing is broadcast), then broadcasts it, and
// returns the transaction it signed last (nil when it signed none). A call that would revert is
// refused before signing with a *txn.RevertError (wrapping txn.ErrNotSent). If the transaction is
// later replaced (same nonce, higher fees), onSigned is called again with the replacement's hash
// before it is broadcast, so it must stay usable after Send returns.
func (s *Sender) Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (*types.Transaction, error) {
	return s.send(ctx, txCall{to: to, data: data}, onSigned)
}

// send returns the transaction it signed last (nil when it signed none) with the outcome.
func (s *Sender) send(ctx context.Context, call txCall, onSigned func(common.Hash) error) (*types.Transaction, error) {
	// The estimate and the fees are two independent reads: made at once, they cost one round
	// trip on the paying request's path instead of two.
	type priced struct {
		f   fees
		err error
	}
	feesRead := make(chan priced, 1)
	go func() {
		f, err := s.currentFees(ctx)
		feesRead <- priced{f, err}
	}()
	if call.gas == 0 {
		gas, err := s.estimate(ctx, call)
		if err != nil {
			<-feesRead
			return nil, err
		}
		call.gas = gas
	}
	p := <-feesRead
	f, err := p.f, p.err
	if err != nil {
		return nil, fmt.Errorf("%w: %w", txn.ErrNotSent, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.affordLocked(ctx, cost(call, f), f); err != nil {
		return nil, err
	}
	var tx *types.Transaction
	for attempt := 0; ; attempt++ {
		// With nothing in flight the chain's nonce is read again: it costs one call when idle and
		// catches a chain that rewound, or another sender of the same key.
		if !s.synced || s.idle() {
			if err := s.repairLocked(ctx); err != nil {
				return nil, fmt.Errorf("%w: nonce: %w", txn.ErrNotSent, err)
			}
		}
		if tx, err = s.signAndSend(ctx, call, f, onSigned); !isNonceConflict(err) || attempt == maxNonceRetries {
			return tx, err
		}
		// Another process using the same key (a second replica) took this nonce: read the chain's
		// nonces again and send anew. The write-ahead hook records the new hash. A short random
		// pause keeps two replicas from colliding on the next nonce too.
		s.synced = false
		s.log.Info("settler nonce taken; retrying with a fresh nonce", "nonce", s.next, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return tx, ctx.Err()
		case <-time.After(time.Duration(1+rand.IntN(20*(attempt+1))) * time.Millisecond):
		}
	}
}

// maxNonceRetries bounds resends after nonce conflicts with other senders of the same key.
const maxNonceRetries = 8

// cost is what a transaction reserves from the sender's balance: gas limit × fee cap + value.
func cost(call txCall, f fees) *big.Int {
	c := new(big.Int).Mul(new(big.Int).SetUint64(call.gas), f.cap)
	if call.value != nil {
		c.Add(c, call.value)
	}
	return c
}

// sign signs call at nonce with fees f.
func (s *Sender) sign(nonce uint64, call txCall, f fees) (*types.Transaction, error) {
	to := call.to
	return types.SignNewTx(s.key, s.signer, &types.DynamicFeeTx{
		ChainID: s.chainID, Nonce: nonce, GasTipCap: f.tip, GasFeeCap: f.cap, Gas: call.gas, To: &to, Data: call.data, Value: call.value,
	})
}

// signAndSend sends one transaction at the allocator's nonce and returns it once signed. The
// caller holds s.mu.
func (s *Sender) signAndSend(ctx context.Context, call txCall, f fees, onSigned func(common.Hash) error) (*types.Transaction, error) {
	tx, err := s.sign(s.next, call, f)
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %w", txn.ErrNotSent, err)
	}
	if onSigned != nil {
		if err := onSigned(tx.Hash()); err != nil {
			return nil, fmt.Errorf("%w: write-ahead record: %w", txn.ErrNotSent, err)
		}
	}
	fl := &Flight{nonce: s.next, call: call, onSigned: onSigned}
	s.addVariant(fl, tx)
	outcome, err := s.node.Broadcast(ctx, tx)
	switch outcome {
	case BroadcastSent:
		s.next++
		return tx, nil
	case BroadcastUnknown:
		// The nonce stays taken: the transaction may be in a pool. It is re-broadcast while
		// anything waits on the account, and later transactions queue behind it.
		s.next++
		return tx, fmt.Errorf("%w: %w", txn.ErrBroadcastUnknown, err)
	}
	s.forget(fl)
	switch {
	case outcome == BroadcastNotDelivered:
		return tx, fmt.Errorf("%w: %w", txn.ErrNotSent, err)
	case isFundsRefusal(err):
		return tx, s.refusedForFunds(ctx, f, err)
	case isNonceTooHigh(err):
		s.synced = false // the allocator is ahead of the chain: repair before the next send
	}
	return tx, fmt.Errorf("%w: node refused: %w", txn.ErrNotSent, err)
}

// isNonceConflict reports a refusal because the nonce is used or taken by a pending transaction.
func isNonceConflict(err error) bool {
	if err == nil || !errors.Is(err, txn.ErrNotSent) {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "nonce too low") || strings.Contains(msg, "replacement transaction underpriced")
}

func isNonceTooHigh(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "nonce too high")
}

func isFundsRefusal(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "insufficient funds")
}

func (s *Sender) estimate(ctx context.Context, call txCall) (uint64, error) {
	to := call.to
	gas, err := s.node.EstimateGas(ctx, ethereum.CallMsg{From: s.from, To: &to, Data: call.data, Value: call.value})
	if err != nil {
		var rev *txn.RevertError
		if errors.As(err, &rev) {
			return 0, fmt.Errorf("%w: %w", txn.ErrNotSent, rev)
		}
		return 0, fmt.Errorf("%w: estimate gas: %w", txn.ErrNotSent, err)
	}
	return gas + gas/4, nil // headroom: state can change between estimate and inclusion
}
