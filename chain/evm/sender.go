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
	// ErrNotSent means the transaction certainly did not reach the chain: the node refused it, it
	// would revert, or the caller's write-ahead hook failed. Nothing was spent.
	ErrNotSent = errors.New("evm: transaction not sent")
	// ErrBroadcastUnknown means the transaction may or may not have reached the node (a transport
	// failure during the send). Its hash was handed to the write-ahead hook; look for its receipt.
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
	return c.sender.send(ctx, to, data, onSigned)
}

func (s *sender) send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	gas, err := s.estimate(ctx, to, data)
	if err != nil {
		return common.Hash{}, err
	}
	tip, feeCap, err := s.fees(ctx)
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: fees: %w", ErrNotSent, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hash common.Hash
	for attempt := 0; ; attempt++ {
		if hash, err = s.signAndSend(ctx, to, data, gas, tip, feeCap, onSigned); !isNonceConflict(err) || attempt == maxNonceRetries {
			return hash, err
		}
		// Another process using the same key (a second replica) took this nonce: re-read the
		// pending nonce and send again. The write-ahead hook records the new hash. A short random
		// pause keeps two replicas from colliding on the next nonce too.
		s.c.log.Info("settler nonce taken; retrying with a fresh nonce", "nonce", s.nonce, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return hash, ctx.Err()
		case <-time.After(time.Duration(1+rand.IntN(20*(attempt+1))) * time.Millisecond):
		}
	}
}

// maxNonceRetries bounds resends after nonce conflicts with other senders of the same key.
const maxNonceRetries = 8

// signAndSend sends one transaction at the allocator's nonce. The caller holds s.mu.
func (s *sender) signAndSend(ctx context.Context, to common.Address, data []byte, gas uint64, tip, feeCap *big.Int, onSigned func(common.Hash) error) (common.Hash, error) {
	if !s.known {
		cctx, cancel := s.c.callCtx(ctx)
		n, err := s.c.eth.PendingNonceAt(cctx, s.from)
		cancel()
		if err != nil {
			return common.Hash{}, fmt.Errorf("%w: nonce: %w", ErrNotSent, err)
		}
		s.nonce, s.known = n, true
	}
	tx, err := types.SignNewTx(s.key, types.LatestSignerForChainID(s.c.chainID), &types.DynamicFeeTx{
		ChainID: s.c.chainID, Nonce: s.nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Data: data,
	})
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: sign: %w", ErrNotSent, err)
	}
	hash := tx.Hash()
	if onSigned != nil {
		if err := onSigned(hash); err != nil {
			return common.Hash{}, fmt.Errorf("%w: write-ahead record: %w", ErrNotSent, err)
		}
	}
	cctx, cancel := s.c.callCtx(ctx)
	err = s.c.eth.SendTransaction(cctx, tx)
	cancel()
	switch {
	case err == nil, isAlreadyKnown(err):
		s.nonce++
		return hash, nil
	case isNodeRefusal(err):
		s.known = false
		return hash, fmt.Errorf("%w: node refused: %w", ErrNotSent, err)
	default:
		s.known = false
		return hash, fmt.Errorf("%w: %w", ErrBroadcastUnknown, err)
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

// isNodeRefusal reports a JSON-RPC error answer: the node received the request and refused it.
func isNodeRefusal(err error) bool {
	var re rpc.Error
	return errors.As(err, &re)
}

func isAlreadyKnown(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "already known")
}

// WaitMined polls for the receipt of hash until it has the configured confirmations or ctx ends.
// A receipt with status 0 returns ErrTxFailed along with the receipt.
func (c *Client) WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	delay := c.opts.PollInterval
	var receipt *types.Receipt
	for {
		if receipt == nil {
			cctx, cancel := c.callCtx(ctx)
			r, err := c.eth.TransactionReceipt(cctx, hash)
			cancel()
			switch {
			case err == nil:
				receipt = r
			case !errors.Is(err, ethereum.NotFound):
				c.log.Warn("receipt poll failed", "tx", hash, "err", err)
			}
		}
		if receipt != nil {
			done, err := c.confirmed(ctx, receipt)
			if err != nil {
				c.log.Warn("block number poll failed", "tx", hash, "err", err)
			}
			if done {
				if receipt.Status != types.ReceiptStatusSuccessful {
					return receipt, fmt.Errorf("%w: %s", ErrTxFailed, hash)
				}
				return receipt, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("evm: waiting for %s: %w", hash, ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

func (c *Client) confirmed(ctx context.Context, r *types.Receipt) (bool, error) {
	if c.opts.Confirmations <= 1 {
		return true, nil
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	head, err := c.eth.BlockNumber(cctx)
	if err != nil {
		return false, err
	}
	return head+1 >= r.BlockNumber.Uint64()+c.opts.Confirmations, nil
}
