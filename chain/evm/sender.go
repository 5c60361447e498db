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
	"github.com/ethereum/go-ethereum/rpc"
)

// Send failures.
var (
	// ErrReadOnly means the client has no settler key.
	ErrReadOnly = errors.New("evm: client has no settler key")
	// ErrNotSent means the transaction certainly did not reach the chain: it was never broadcast
	// (it would revert, fees or nonce could not be read, or the caller's write-ahead hook failed),
	// or the node answered with a refusal it is known to give only for transactions it rejects,
	// such as "nonce too low" or "insufficient funds", and does not hold the transaction. Nothing
	// was spent.
	ErrNotSent = errors.New("evm: transaction not sent")
	// ErrBroadcastUnknown means the transaction may or may not have reached the node: a transport
	// failure, a timeout, or a JSON-RPC error that is not a known refusal (a hosted endpoint may
	// forward a transaction and still answer "internal error" or "rate limited"). Its hash was
	// handed to the write-ahead hook; look for its receipt.
	ErrBroadcastUnknown = errors.New("evm: broadcast outcome unknown")
	// ErrTxFailed means the transaction was mined with status 0.
	ErrTxFailed = errors.New("evm: transaction failed on chain")
)

// RevertError is a call or gas estimate that the EVM reverted, with its reason when the contract
// gave one.
type RevertError struct {
	Reason string
	Err    error
}

func (e *RevertError) Error() string {
	if e.Reason == "" {
		return "evm: execution reverted"
	}
	return "evm: execution reverted: " + e.Reason
}

func (e *RevertError) Unwrap() error { return e.Err }

// sender owns the settler account's nonce: one allocator per key and process, so concurrent
// settlements get consecutive nonces.
type sender struct {
	c     *Client
	key   *ecdsa.PrivateKey
	from  common.Address
	mu    sync.Mutex
	nonce uint64
	known bool // nonce is trusted; false after any doubt, so the next send re-reads it
}

func newSender(c *Client, key *ecdsa.PrivateKey) *sender {
	return &sender{c: c, key: key, from: crypto.PubkeyToAddress(key.PublicKey)}
}

// Send signs a transaction calling to with data from the settler account, hands its hash to
// onSigned (a write-ahead record; if it fails nothing is broadcast), then broadcasts it. A call
// that would revert is refused before signing with a *RevertError (wrapping ErrNotSent).
func (c *Client) Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	if c.sender == nil {
		return common.Hash{}, ErrReadOnly
	}
	tx, err := c.sender.send(ctx, to, data, onSigned)
	return txHash(tx), err
}

// txHash is tx's hash, zero for no transaction.
func txHash(tx *types.Transaction) common.Hash {
	if tx == nil {
		return common.Hash{}
	}
	return tx.Hash()
}

// send returns the last transaction it signed (nil when it signed none) with the outcome.
func (s *sender) send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (*types.Transaction, error) {
	gas, err := s.estimate(ctx, to, data)
	if err != nil {
		return nil, err
	}
	tip, feeCap, err := s.fees(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: fees: %w", ErrNotSent, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var tx *types.Transaction
	for attempt := 0; ; attempt++ {
		if tx, err = s.signAndSend(ctx, to, data, gas, tip, feeCap, onSigned); !isNonceConflict(err) || attempt == maxNonceRetries {
			return tx, err
		}
		// Another process using the same key (a second replica) took this nonce: re-read the
		// pending nonce and send again. The write-ahead hook records the new hash. A short random
		// pause keeps two replicas from colliding on the next nonce too.
		s.c.log.Info("settler nonce taken; retrying with a fresh nonce", "nonce", s.nonce, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return tx, ctx.Err()
		case <-time.After(time.Duration(1+rand.IntN(20*(attempt+1))) * time.Millisecond):
		}
	}
}

// maxNonceRetries bounds resends after nonce conflicts with other senders of the same key.
const maxNonceRetries = 8

// signAndSend sends one transaction at the allocator's nonce and returns it once signed. The
// caller holds s.mu.
func (s *sender) signAndSend(ctx context.Context, to common.Address, data []byte, gas uint64, tip, feeCap *big.Int, onSigned func(common.Hash) error) (*types.Transaction, error) {
	if !s.known {
		cctx, cancel := s.c.callCtx(ctx)
		n, err := s.c.eth.PendingNonceAt(cctx, s.from)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: nonce: %w", ErrNotSent, err)
		}
		s.nonce, s.known = n, true
	}
	tx, err := types.SignNewTx(s.key, types.LatestSignerForChainID(s.c.chainID), &types.DynamicFeeTx{
		ChainID: s.c.chainID, Nonce: s.nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %w", ErrNotSent, err)
	}
	hash := tx.Hash()
	if onSigned != nil {
		if err := onSigned(hash); err != nil {
			return nil, fmt.Errorf("%w: write-ahead record: %w", ErrNotSent, err)
		}
	}
	cctx, cancel := s.c.callCtx(ctx)
	err = s.c.eth.SendTransaction(cctx, tx)
	cancel()
	outcome := classifyBroadcast(err)
	if outcome == broadcastRefused {
		outcome = s.recheckRefusal(ctx, hash)
	}
	switch outcome {
	case broadcastSent:
		s.nonce++
		return tx, nil
	case broadcastRefused:
		s.known = false
		return tx, fmt.Errorf("%w: node refused: %w", ErrNotSent, err)
	default:
		s.known = false
		return tx, fmt.Errorf("%w: %w", ErrBroadcastUnknown, err)
	}
}

// recheckRefusal asks the node for a transaction it just refused. A refusal can be about this
// very transaction: an endpoint that forwarded it, lost the answer and retried gets "nonce too
// low" once it is mined. Only when the node does not hold it is the refusal believed.
func (s *sender) recheckRefusal(ctx context.Context, hash common.Hash) broadcastOutcome {
	cctx, cancel := s.c.callCtx(ctx)
	defer cancel()
	_, _, err := s.c.eth.TransactionByHash(cctx, hash)
	switch {
	case err == nil:
		return broadcastSent
	case errors.Is(err, ethereum.NotFound):
		return broadcastRefused
	default:
		return broadcastUnknown
	}
}

// isNonceConflict reports a refusal because the nonce is used or taken by a pending transaction.
func isNonceConflict(err error) bool {
	if err == nil || !errors.Is(err, ErrNotSent) {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "nonce too low") || strings.Contains(msg, "replacement transaction underpriced")
}

func (s *sender) estimate(ctx context.Context, to common.Address, data []byte) (uint64, error) {
	cctx, cancel := s.c.callCtx(ctx)
	defer cancel()
	gas, err := s.c.eth.EstimateGas(cctx, ethereum.CallMsg{From: s.from, To: &to, Data: data})
	if err != nil {
		if rev := asRevert(err); rev != nil {
			return 0, fmt.Errorf("%w: %w", ErrNotSent, rev)
		}
		return 0, fmt.Errorf("%w: estimate gas: %w", ErrNotSent, err)
	}
	return gas + gas/4, nil // headroom: state can change between estimate and inclusion
}

func (s *sender) fees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	cctx, cancel := s.c.callCtx(ctx)
	defer cancel()
	if tip, err = s.c.eth.SuggestGasTipCap(cctx); err != nil {
		return nil, nil, err
	}
	head, err := s.c.eth.HeaderByNumber(cctx, nil)
	if err != nil {
		return nil, nil, err
	}
	feeCap = new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	return tip, feeCap, nil
}

// asRevert extracts a revert from a JSON-RPC error, or returns nil.
func asRevert(err error) *RevertError {
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil {
				reason, _ := abi.UnpackRevert(data)
				return &RevertError{Reason: reason, Err: err}
			}
		}
	}
	if strings.Contains(err.Error(), "execution reverted") {
		return &RevertError{Err: err}
	}
	return nil
}
