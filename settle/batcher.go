package settle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle/txn"
)

// BatchChain is what the batcher needs of the chain: sending a transaction from the settler
// (with a write-ahead hook for every transaction that carries it, replacements included),
// waiting for it, and simulating a call.
type BatchChain interface {
	Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error)
	WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	Call(ctx context.Context, to common.Address, data []byte) ([]byte, error)
}

// Transfer is one EIP-3009 transferWithAuthorization to settle.
type Transfer struct {
	Token      common.Address
	Authorizer common.Address // the payer: the authorization's from
	Nonce      common.Hash
	Data       []byte // the token call's calldata
	// OnSigned records a transaction carrying the transfer before it is broadcast; a failure
	// keeps the transaction from being sent.
	OnSigned func(common.Hash) error
	// OnSent, when set, is told once the transaction carrying the transfer was broadcast.
	OnSent func()
}

// Outcome is how a transfer's settlement went.
type Outcome struct {
	// Tx is the transaction that carried it, zero when none was sent.
	Tx common.Hash
	// Receipt is that transaction's receipt once mined.
	Receipt *types.Receipt
	// Used reports that the receipt holds the authorization's AuthorizationUsed log: the
	// transfer happened. A batch can be mined while one of its transfers failed.
	Used bool
	// Err is why there is no receipt: the transfer was refused before sending (it would revert;
	// a *RevertError-like error from the simulation, or the chain's own not-sent errors), its
	// broadcast had no usable answer and it is not mined yet, or the wait ended.
	Err error
}

// Batcher settles transfers that arrive together in one transaction: a Multicall3 aggregate3
// call with failure allowed per transfer, so one bad authorization never fails the others; a
// transfer alone is sent to its token directly. Transfers the simulation shows would fail are
// answered at once and not sent. Each transfer's own outcome is read from the receipt's logs.
type Batcher struct {
	Chain BatchChain
	// Multicall is the Multicall3 address (default the canonical one).
	Multicall common.Address
	// Window is how long the first transfer of a batch waits for others (default 0: a batch is
	// what queued up while the previous one was being sent).
	Window time.Duration
	// MaxBatch caps the transfers of one transaction (default 100).
	MaxBatch int
	// WaitFor bounds the wait for a batch's receipt, whatever its callers' contexts (default 10 min).
	WaitFor time.Duration
	Logger  *slog.Logger

	once sync.Once
	reqs chan *batchReq
	// expected counts transfers announced with Expect that have not arrived yet; announcing is
	// set by the first Expect, after which the window waits only while one is expected.
	expected   atomic.Int64
	announcing atomic.Bool
}

// Expect announces a transfer that is coming soon: a payment whose request is with the
// upstream, or a queued payment about to be sent. A batch waits its Window only while a transfer
// is expected, and goes as soon as none is: a lone payment on a quiet gateway is sent at once,
// and the window gathers only what concurrent requests bring. The returned func withdraws the
// announcement; call it once, right before Settle, or when the transfer will not come. A batcher
// never told anything waits its full Window for every batch.
func (b *Batcher) Expect() (arrived func()) {
	b.announcing.Store(true)
	b.expected.Add(1)
	var once sync.Once
	return func() { once.Do(func() { b.expected.Add(-1) }) }
}

type batchReq struct {
	t   Transfer
	out chan Outcome
}

// Settle queues t and returns its outcome, or when ctx ends first, what is known then (the
// transaction, if one was sent; Err the context's). The batch goes on regardless.
func (b *Batcher) Settle(ctx context.Context, t Transfer) Outcome {
	b.once.Do(b.start)
	r := &batchReq{t: t, out: make(chan Outcome, 2)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return Outcome{Err: ctx.Err()}
	}
	var sent common.Hash
	for {
		select {
		case o := <-r.out:
			if o.Receipt == nil && o.Err == nil {
				sent = o.Tx // sent, not yet mined
				continue
			}
			return o
		case <-ctx.Done():
			return Outcome{Tx: sent, Err: ctx.Err()}
		}
	}
}

func (b *Batcher) start() {
	if b.Multicall == (common.Address{}) {
		b.Multicall = multicall3.Address
	}
	if b.MaxBatch <= 0 {
		b.MaxBatch = 100
	}
	if b.WaitFor <= 0 {
		b.WaitFor = 10 * time.Minute
	}
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	b.reqs = make(chan *batchReq, b.MaxBatch)
	go b.run()
}

// run gathers batches and sends them one after the other; each waits for its receipt on its own.
func (b *Batcher) run() {
	for first := range b.reqs {
		batch := []*batchReq{first}
		var window <-chan time.Time
		if b.Window > 0 {
			window = time.After(b.Window)
		}
	gather:
		for len(batch) < b.MaxBatch {
			if window == nil || b.announcing.Load() && b.expected.Load() <= 0 {
				// Nothing more is coming (or no window): take what is queued and go.
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			case <-window:
				break gather
			}
		}
		b.send(batch)
	}
}

// send simulates the batch, answers the transfers that would fail, sends the rest in one
// transaction and waits for it in the background.
func (b *Batcher) send(batch []*batchReq) {
	ctx, cancel := context.WithTimeout(context.Background(), b.WaitFor)
	if len(batch) > 1 {
		batch = b.dropFailing(ctx, batch)
	}
	var to common.Address
	var data []byte
	switch len(batch) {
	case 0:
		cancel()
		return
	case 1:
		to, data = batch[0].t.Token, batch[0].t.Data
	default:
		to, data = b.Multicall, aggregate3(batch)
	}
	refused := -1 // the member whose write-ahead record failed, keeping the batch from being sent
	hash, err := b.Chain.Send(ctx, to, data, func(h common.Hash) error {
		for i, r := range batch {
			if r.t.OnSigned != nil {
				if err := r.t.OnSigned(h); err != nil {
					refused = i
					return err
				}
			}
		}
		return nil
	})
	if err != nil && (hash == (common.Hash{}) || errors.Is(err, txn.ErrNotSent)) {
		// Not sent: signed, maybe, but refused before or at broadcast.
		cancel()
		if refused >= 0 && len(batch) > 1 {
			// One member could not be recorded (another sender has it, or its record failed):
			// it alone is refused, and the others go out without it.
			batch[refused].out <- Outcome{Err: err}
			b.send(append(batch[:refused:refused], batch[refused+1:]...))
			return
		}
		answerAll(batch, Outcome{Err: err})
		return
	}
	for _, r := range batch {
		if r.t.OnSent != nil {
			r.t.OnSent()
		}
		r.out <- Outcome{Tx: hash} // sent: a caller that gives up now knows its transaction
	}
	go func() {
		defer cancel()
		receipt, werr := b.Chain.WaitMined(ctx, hash)
		if receipt == nil {
			if werr == nil {
				werr = errors.New("settle: no receipt")
			}
			answerAll(batch, Outcome{Tx: hash, Err: errors.Join(err, werr)})
			return
		}
		for _, r := range batch {
			r.out <- Outcome{Tx: receipt.TxHash, Receipt: receipt, Used: exact.AuthorizationUsed(receipt, r.t.Token, r.t.Authorizer, r.t.Nonce)}
		}
		if len(batch) > 1 {
			b.Logger.Info("settled a batch of transfers", "transfers", len(batch), "tx", receipt.TxHash, "gas", receipt.GasUsed)
		}
	}()
}

// dropFailing runs the batch as a call and answers, without sending them, the transfers whose
// own call fails; it returns the others. When the simulation itself fails, the batch is sent as
// is: every transfer's outcome is read from the receipt anyway.
func (b *Batcher) dropFailing(ctx context.Context, batch []*batchReq) []*batchReq {
	out, err := b.Chain.Call(ctx, b.Multicall, aggregate3(batch))
	if err != nil {
		b.Logger.Warn("simulating a batch of transfers failed; sending it unfiltered", "err", err)
		return batch
	}
	results, err := multicall3.NewMulticall3().UnpackAggregate3(out)
	if err != nil || len(results) != len(batch) {
		return batch
	}
	kept := batch[:0:0]
	for i, r := range batch {
		if results[i].Success {
			kept = append(kept, r)
			continue
		}
		reason, _ := abi.UnpackRevert(results[i].ReturnData)
		r.out <- Outcome{Err: &SimulatedRevert{Reason: reason, Data: results[i].ReturnData}}
	}
	return kept
}

// SimulatedRevert is a transfer left out of a batch because its call would revert, after the
// batch's transfers before it: its reason string when it gave one, and the raw revert data.
type SimulatedRevert struct {
	Reason string
	Data   []byte
}

// insufficientBalance is the selector of OpenZeppelin's ERC20InsufficientBalance error.
var insufficientBalance = crypto.Keccak256([]byte("ERC20InsufficientBalance(address,uint256,uint256)"))[:4]

// InsufficientBalance reports whether the transfer failed for want of the payer's funds: the
// payer's other payments in the same batch came first.
func (e *SimulatedRevert) InsufficientBalance() bool {
	return bytes.HasPrefix(e.Data, insufficientBalance) || strings.Contains(strings.ToLower(e.Reason), "exceeds balance")
}

func (e *SimulatedRevert) Error() string {
	if e.Reason == "" {
		return "settle: the transfer would revert"
	}
	return fmt.Sprintf("settle: the transfer would revert: %s", e.Reason)
}

func answerAll(batch []*batchReq, o Outcome) {
	for _, r := range batch {
		r.out <- o
	}
}

// aggregate3 packs the batch as one Multicall3 aggregate3 call, each transfer allowed to fail.
func aggregate3(batch []*batchReq) []byte {
	calls := make([]multicall3.Multicall3Call3, len(batch))
	for i, r := range batch {
		calls[i] = multicall3.Multicall3Call3{Target: r.t.Token, AllowFailure: true, CallData: r.t.Data}
	}
	return multicall3.NewMulticall3().PackAggregate3(calls)
}
