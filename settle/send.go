package settle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/txn"
)

// TxChain is what sending one transaction and following it needs of the chain: a send from the
// settler with a write-ahead hook for every transaction that carries the call (replacements
// included), and a wait for whichever of them is mined.
type TxChain interface {
	Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error)
	WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error)
}

// Call is one contract call to send from the settler account.
type Call struct {
	To   common.Address
	Data []byte
	// OnSigned, when set, records a transaction carrying the call before it is broadcast; a
	// failure keeps the transaction from being sent. It is called again for a replacement,
	// possibly after SendAndWait returned.
	OnSigned func(common.Hash) error
	// AfterSend, when set, runs once the send returned, whatever its outcome, before the wait.
	AfterSend func()
	// UnknownWait bounds the wait for a transaction whose broadcast got no usable answer (see
	// txn.ErrBroadcastUnknown); zero waits as long as ctx allows.
	UnknownWait time.Duration
	// Logger, when set, hears of a broadcast whose outcome is unknown and is being waited for.
	Logger *slog.Logger
}

// DefaultUnknownWait is how long, by default, a transaction whose broadcast got no usable answer
// is waited for by a sender that has no request waiting on it.
const DefaultUnknownWait = time.Minute

// Sent is what became of a call SendAndWait sent.
type Sent struct {
	// Tx is the mined transaction once there is a receipt, else the last one signed; zero when
	// none was signed.
	Tx common.Hash
	// Waited reports that the transaction went out, or may have (its broadcast outcome is
	// unknown), and was waited for. When false, Err is the send's failure and no wait followed.
	Waited bool
	// Receipt is the mined transaction's receipt, whatever its status.
	Receipt *types.Receipt
	// Err is nil once the transaction is mined with success. After a wait it matches
	// txn.ErrFailed for a transaction mined with status 0, and otherwise says why no receipt
	// came (the context ended; a broadcast of unknown outcome found no receipt in time).
	Err error
}

// SendAndWait sends call from the settler account and waits for its receipt.
func SendAndWait(ctx context.Context, chain TxChain, call Call) Sent {
	hash, err := chain.Send(ctx, call.To, call.Data, call.OnSigned)
	if call.AfterSend != nil {
		call.AfterSend()
	}
	if err != nil && !errors.Is(err, txn.ErrBroadcastUnknown) {
		return Sent{Tx: hash, Err: err}
	}
	if err != nil && call.Logger != nil {
		call.Logger.Warn("broadcast outcome unknown; waiting for a receipt", "tx", hash, "err", err)
	}
	wctx := ctx
	if err != nil && call.UnknownWait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, call.UnknownWait)
		defer cancel()
	}
	receipt, werr := chain.WaitMined(wctx, hash)
	switch {
	case receipt != nil && (werr == nil || errors.Is(werr, txn.ErrFailed)):
		return Sent{Tx: receipt.TxHash, Waited: true, Receipt: receipt, Err: werr}
	case err != nil && ctx.Err() != nil:
		return Sent{Tx: hash, Waited: true, Err: fmt.Errorf("%w (then %w)", err, ctx.Err())}
	case err != nil && call.UnknownWait > 0:
		return Sent{Tx: hash, Waited: true, Err: fmt.Errorf("%w; no receipt within %s", err, call.UnknownWait)}
	case err != nil:
		return Sent{Tx: hash, Waited: true, Err: fmt.Errorf("%w; no receipt: %w", err, werr)}
	}
	return Sent{Tx: hash, Waited: true, Receipt: receipt, Err: werr}
}
