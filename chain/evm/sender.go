package evm

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/settle/txn"
)

// ErrReadOnly means the client has no settler key.
var ErrReadOnly = errors.New("evm: client has no settler key")

// Sends and waits fail with the settlement engine's outcome errors (package settle/txn):
// txn.ErrNotSent, txn.ErrBroadcastUnknown, txn.ErrSettlerUnfunded, txn.ErrFailed, *txn.RevertError.

// sender owns the settler account's nonces: one allocator per key and process, so concurrent
// settlements get consecutive nonces. It remembers every transaction it signed until it is mined
// (its flights), so that a lost one can be re-broadcast, a slow one replaced, and a nonce gap
// filled (see repair.go).
type sender struct {
	c      *Client
	key    *ecdsa.PrivateKey
	from   common.Address
	signer types.Signer

	// mu orders allocation, signing, broadcasting and repair.
	mu         sync.Mutex
	next       uint64 // the nonce the next transaction gets
	synced     bool   // next was checked against the chain since the last doubt
	lastRepair time.Time

	// track guards the records below; taken after mu when both are needed. Waiters take only it.
	track   sync.Mutex
	flights map[uint64]*flight      // signed and not yet seen mined, by nonce
	landed  *landedFlights          // mined recently, kept for a chain that rewinds
	byHash  map[common.Hash]*flight // every variant of every flight and landed flight

	funds funds
}

func newSender(c *Client, key *ecdsa.PrivateKey) *sender {
	return &sender{
		c: c, key: key, from: crypto.PubkeyToAddress(key.PublicKey), signer: types.LatestSignerForChainID(c.chainID),
		flights: map[uint64]*flight{}, landed: newLandedFlights(landedKept), byHash: map[common.Hash]*flight{},
	}
}

// txCall is what a transaction does; every variant signed for its nonce does the same.
type txCall struct {
	to    common.Address
	data  []byte
	value *big.Int
	gas   uint64
}

// Send signs a transaction calling to with data from the settler account, hands its hash to
// onSigned (a write-ahead record; if it fails nothing is broadcast), then broadcasts it. A call
// that would revert is refused before signing with a *txn.RevertError (wrapping txn.ErrNotSent). If the
// transaction is later replaced (same nonce, higher fees), onSigned is called again with the
// replacement's hash before it is broadcast, so it must stay usable after Send returns; WaitMined
// on any of the hashes returns whichever is mined.
func (c *Client) Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	if c.sender == nil {
		return common.Hash{}, ErrReadOnly
	}
	tx, err := c.sender.send(ctx, txCall{to: to, data: data}, onSigned)
	return txHash(tx), err
}

// txHash is tx's hash, zero for no transaction.
func txHash(tx *types.Transaction) common.Hash {
	if tx == nil {
		return common.Hash{}
	}
	return tx.Hash()
}

// send returns the transaction it signed last (nil when it signed none) with the outcome.
func (s *sender) send(ctx context.Context, call txCall, onSigned func(common.Hash) error) (*types.Transaction, error) {
	if call.gas == 0 {
		gas, err := s.estimate(ctx, call)
		if err != nil {
			return nil, err
		}
		call.gas = gas
	}
	f, err := s.c.currentFees(ctx)
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
		s.c.log.Info("settler nonce taken; retrying with a fresh nonce", "nonce", s.next, "attempt", attempt+1)
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
func (s *sender) sign(nonce uint64, call txCall, f fees) (*types.Transaction, error) {
	to := call.to
	return types.SignNewTx(s.key, s.signer, &types.DynamicFeeTx{
		ChainID: s.c.chainID, Nonce: nonce, GasTipCap: f.tip, GasFeeCap: f.cap, Gas: call.gas, To: &to, Data: call.data, Value: call.value,
	})
}

// signAndSend sends one transaction at the allocator's nonce and returns it once signed. The
// caller holds s.mu.
func (s *sender) signAndSend(ctx context.Context, call txCall, f fees, onSigned func(common.Hash) error) (*types.Transaction, error) {
	tx, err := s.sign(s.next, call, f)
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %w", txn.ErrNotSent, err)
	}
	if onSigned != nil {
		if err := onSigned(tx.Hash()); err != nil {
			return nil, fmt.Errorf("%w: write-ahead record: %w", txn.ErrNotSent, err)
		}
	}
	fl := &flight{nonce: s.next, call: call, onSigned: onSigned}
	s.addVariant(fl, tx)
	outcome, err := s.c.broadcast(ctx, tx)
	switch outcome {
	case broadcastSent:
		s.next++
		return tx, nil
	case broadcastUnknown:
		// The nonce stays taken: the transaction may be in a pool. It is re-broadcast while
		// anything waits on the account, and later transactions queue behind it.
		s.next++
		return tx, fmt.Errorf("%w: %w", txn.ErrBroadcastUnknown, err)
	}
	s.forget(fl)
	switch {
	case outcome == broadcastNotDelivered:
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

func (s *sender) estimate(ctx context.Context, call txCall) (uint64, error) {
	to := call.to
	gas, err := readValue(ctx, s.c, func(ctx context.Context, eth *ethclient.Client) (uint64, error) {
		return eth.EstimateGas(ctx, ethereum.CallMsg{From: s.from, To: &to, Data: call.data, Value: call.value})
	})
	if err != nil {
		if rev := asRevert(err); rev != nil {
			return 0, fmt.Errorf("%w: %w", txn.ErrNotSent, rev)
		}
		return 0, fmt.Errorf("%w: estimate gas: %w", txn.ErrNotSent, err)
	}
	return gas + gas/4, nil // headroom: state can change between estimate and inclusion
}

// asRevert extracts a revert from a JSON-RPC error, or returns nil.
func asRevert(err error) *txn.RevertError {
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil {
				reason, _ := abi.UnpackRevert(data)
				return &txn.RevertError{Reason: reason, Err: err}
			}
		}
	}
	if strings.Contains(err.Error(), "execution reverted") {
		return &txn.RevertError{Err: err}
	}
	return nil
}
