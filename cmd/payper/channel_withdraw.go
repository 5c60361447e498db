package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/store"
)

func runChannelStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("channel status", "channel status [flags] [URL]", stderr)
	cf := addChannelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	st, err := cf.store()
	if err != nil {
		return err
	}
	records, listErr := st.List()
	if listErr != nil {
		fmt.Fprintln(stderr, "payper: some channel files could not be read:", listErr)
	}
	if fs.NArg() == 1 {
		kept := records[:0]
		for _, r := range records {
			if r.HasOrigin(fs.Arg(0)) {
				kept = append(kept, r)
			}
		}
		records = kept
	}
	var chain *evm.Client
	if rpc := cf.rpc(); rpc != "" && len(records) > 0 {
		if chain, err = evm.Dial(ctx, rpc, nil, evm.Options{}); err != nil {
			return err
		}
		defer chain.Close()
	}
	views := make([]channelView, 0, len(records))
	for _, r := range records {
		v := viewOf(r)
		if chain != nil && sameChain(r, chain) {
			cs, err := chain.ChannelState(ctx, r.ChannelID)
			if err != nil {
				return err
			}
			v.OnChain = chainViewOf(cs, r.Config.WithdrawDelay)
		}
		views = append(views, v)
	}
	if *cf.asJSON {
		return json.NewEncoder(stdout).Encode(views)
	}
	if len(records) == 0 {
		fmt.Fprintf(stdout, "no channels in %s\n", st.Path())
		return nil
	}
	for i, r := range records {
		fmt.Fprintf(stdout, "channel %s on %s\n", r.ChannelID.Hex(), r.Network)
		printRecord(stdout, cf, r)
		if oc := views[i].OnChain; oc != nil {
			printChain(stdout, cf, oc)
		}
	}
	return nil
}

// chainView is a channel's escrow state as the chain reports it.
type chainView struct {
	Balance           string `json:"balance"`
	TotalClaimed      string `json:"totalClaimed"`
	PendingWithdrawal string `json:"pendingWithdrawal"`
	// WithdrawRequestedAt and WithdrawableAt are unix seconds, 0 when no withdrawal is pending.
	WithdrawRequestedAt int64  `json:"withdrawRequestedAt"`
	WithdrawableAt      int64  `json:"withdrawableAt"`
	Block               uint64 `json:"block"`
}

func chainViewOf(s store.ChannelChainState, delay uint64) *chainView {
	v := &chainView{Balance: s.Balance.String(), TotalClaimed: s.TotalClaimed.String(), PendingWithdrawal: s.PendingWithdrawal.String(), Block: s.Block}
	if s.PendingWithdrawal.Sign() > 0 {
		v.WithdrawRequestedAt = s.WithdrawRequestedAt
		v.WithdrawableAt = s.WithdrawRequestedAt + int64(delay)
	}
	return v
}

func printChain(w io.Writer, cf *channelFlags, v *chainView) {
	n := func(s string) *big.Int { x, _ := new(big.Int).SetString(s, 10); return x }
	fmt.Fprintf(w, "  on chain   balance %s, claimed %s (block %d)\n", cf.show(n(v.Balance)), cf.show(n(v.TotalClaimed)), v.Block)
	if v.WithdrawableAt != 0 {
		fmt.Fprintf(w, "  withdrawal %s pending, can be finalized from %s\n", cf.show(n(v.PendingWithdrawal)), time.Unix(v.WithdrawableAt, 0).Format(time.RFC3339))
	}
}

func sameChain(r *channelstore.Record, c *evm.Client) bool {
	id, err := evmsig.ChainIDFromNetwork(r.Network)
	return err == nil && id.Cmp(c.ChainID()) == 0
}

// withdrawal is the outcome of `payper channel withdraw`; amounts in atomic units.
type withdrawal struct {
	Amount           string `json:"amount"`
	InitiateTx       string `json:"initiateTx,omitempty"`
	FinalizeTx       string `json:"finalizeTx,omitempty"`
	Withdrawn        string `json:"withdrawn,omitempty"` // what reached the payer's wallet
	ReadyAt          int64  `json:"readyAt"`             // unix seconds
	RemainingSeconds int64  `json:"remainingSeconds"`    // 0 once finalized or ready
}

func runChannelWithdraw(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("channel withdraw", "channel withdraw [flags] URL|CHANNEL_ID", stderr)
	noWait := fs.Bool("no-wait", false, "only start the withdrawal (or report how long it has left); run the command again to finalize it")
	amountFlag := fs.String("amount", "", "withdraw only this much: \"$1\" or atomic units (default: everything not claimed)")
	cf := addChannelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	key, err := cf.key()
	if err != nil {
		return err
	}
	amount, err := cf.optionalAmount("amount", *amountFlag)
	if err != nil {
		return err
	}
	st, err := cf.store()
	if err != nil {
		return err
	}
	rec, err := findChannel(st, fs.Arg(0), key)
	if err != nil {
		return err
	}
	w, err := newWithdrawer(ctx, cf, st, key, rec.Network, stdout)
	if err != nil {
		return err
	}
	defer w.chain.Close()
	return w.run(ctx, rec, amount, *noWait)
}

// newWithdrawer connects to the chain of network as the payer key, who sends the withdrawal
// transactions itself and pays their gas. The caller closes w.chain.
func newWithdrawer(ctx context.Context, cf *channelFlags, st *channelstore.Dir, key *ecdsa.PrivateKey, network string, out io.Writer) (*withdrawer, error) {
	rpc := cf.rpc()
	if rpc == "" {
		return nil, fmt.Errorf("withdrawing needs the chain: give --rpc-url")
	}
	chainID, err := evmsig.ChainIDFromNetwork(network)
	if err != nil {
		return nil, err
	}
	chain, err := evm.Dial(ctx, rpc, chainID, evm.Options{SettlerKey: key})
	if err != nil {
		return nil, err
	}
	now := func() time.Time { return chainNow(ctx, chain) }
	return &withdrawer{chain: chain, store: st, cf: cf, out: out, payer: key, now: now, sleep: backoff.Sleep, every: 10 * time.Second}, nil
}

// chainNow is the later of the wall clock and the latest block's time. The escrow judges the
// delay by block time, which on a public chain follows the wall clock and on a dev chain may have
// been moved ahead.
func chainNow(ctx context.Context, chain *evm.Client) time.Time {
	now := time.Now()
	if t, err := chain.LatestBlockTime(ctx); err == nil && t.After(now) {
		return t
	}
	return now
}

// withdrawer runs a timed withdrawal: initiate, wait out the delay, finalize. `payper pay` may
// use the channel meanwhile, so every change to the channel's record is made to the record as
// it is in the store at that moment.
type withdrawer struct {
	chain *evm.Client
	store *channelstore.Dir
	cf    *channelFlags
	out   io.Writer
	payer *ecdsa.PrivateKey
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	every time.Duration // a progress line this often while waiting
}

func (w *withdrawer) run(ctx context.Context, rec *channelstore.Record, amount *big.Int, noWait bool) error {
	cs, err := w.chain.ChannelState(ctx, rec.ChannelID)
	if err != nil {
		return err
	}
	res := withdrawal{}
	if cs.PendingWithdrawal.Sign() > 0 {
		res.Amount = cs.PendingWithdrawal.String()
		w.say("withdrawal of %s from channel %s is pending\n", w.cf.show(cs.PendingWithdrawal), rec.ChannelID.Hex())
		// It may have been started elsewhere: payments must not count on it either way.
		if err := w.recordPending(rec.ChannelID, cs); err != nil {
			return err
		}
	} else {
		if cs, err = w.initiate(ctx, rec, cs, amount, &res); err != nil || res.Amount == "" {
			return err
		}
	}
	ready := time.Unix(cs.WithdrawRequestedAt+int64(rec.Config.WithdrawDelay), 0)
	res.ReadyAt = ready.Unix()
	if left := ready.Sub(w.now()); left > 0 && noWait {
		res.RemainingSeconds = int64((left + time.Second - 1) / time.Second)
		w.say("it can be finalized at %s, in %s: run this command again then\n", ready.Format(time.RFC3339), left.Round(time.Second))
		return w.done(res)
	}
	// A block timestamp is whole seconds: finalize one second after the delay, to be sure.
	if err := waitUntil(ctx, ready.Add(time.Second), w.now, w.sleep, w.every, w.progress()); err != nil {
		return err
	}
	return w.finalize(ctx, rec, res)
}

// initiate starts a withdrawal of amount, or of everything not spent: the balance less what is
// claimed or, when more, what the server charged (the server claims that before the delay ends).
func (w *withdrawer) initiate(ctx context.Context, rec *channelstore.Record, cs store.ChannelChainState, amount *big.Int, res *withdrawal) (store.ChannelChainState, error) {
	free := new(big.Int).Sub(cs.Balance, cs.TotalClaimed)
	spent := cs.TotalClaimed
	if rec.Charged != nil && rec.Charged.Cmp(spent) > 0 {
		spent = rec.Charged
	}
	unspent := new(big.Int).Sub(cs.Balance, spent)
	if amount == nil {
		amount = unspent
	}
	if amount.Sign() <= 0 {
		w.say("nothing to withdraw from channel %s: balance %s, all of it spent\n", rec.ChannelID.Hex(), w.cf.show(cs.Balance))
		return cs, w.done(*res)
	}
	if amount.Cmp(free) > 0 {
		return cs, fmt.Errorf("channel %s has only %s not yet claimed", rec.ChannelID.Hex(), w.cf.show(free))
	}
	if amount.Cmp(unspent) > 0 {
		w.say("note: %s of this was charged to you and is not claimed yet; the server claims it before the withdrawal is paid\n",
			w.cf.show(new(big.Int).Sub(amount, unspent)))
	}
	tx, err := w.chain.InitiateWithdraw(ctx, rec.Config, amount)
	if err != nil {
		return cs, fmt.Errorf("initiate withdrawal: %w", err)
	}
	res.Amount, res.InitiateTx = amount.String(), tx.Hex()
	w.say("started a withdrawal of %s from channel %s\n  tx %s\n", w.cf.show(amount), rec.ChannelID.Hex(), tx.Hex())
	if cs, err = w.chain.ChannelState(ctx, rec.ChannelID); err != nil {
		return cs, err
	}
	return cs, w.recordPending(rec.ChannelID, cs)
}

// recordPending notes the withdrawal pending in cs in the channel's record, so that payments
// stop counting on that money.
func (w *withdrawer) recordPending(id common.Hash, cs store.ChannelChainState) error {
	return w.update(id, func(r *channelstore.Record) {
		r.SetWithdrawal(cs.PendingWithdrawal, uint64(max(cs.WithdrawRequestedAt, 0)))
	})
}

// update applies change to the channel's record as stored now, not to a copy read earlier, and
// saves it. A record deleted meanwhile stays deleted.
func (w *withdrawer) update(id common.Hash, change func(*channelstore.Record)) error {
	rec, err := w.store.Load(id)
	if errors.Is(err, channelstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	change(rec)
	rec.UpdatedAt = w.now()
	return w.store.Save(rec)
}

func (w *withdrawer) finalize(ctx context.Context, rec *channelstore.Record, res withdrawal) error {
	payer := crypto.PubkeyToAddress(w.payer.PublicKey)
	before, err := w.chain.BalanceOf(ctx, rec.Config.Token, payer)
	if err != nil {
		return err
	}
	tx, err := w.chain.FinalizeWithdraw(ctx, rec.Config)
	if err != nil {
		return fmt.Errorf("finalize withdrawal: %w", err)
	}
	after, err := w.chain.BalanceOf(ctx, rec.Config.Token, payer)
	if err != nil {
		return err
	}
	got := new(big.Int).Sub(after, before)
	res.FinalizeTx, res.Withdrawn, res.RemainingSeconds = tx.Hex(), got.String(), 0
	w.say("withdrew %s from channel %s\n  tx %s\n", w.cf.show(got), rec.ChannelID.Hex(), tx.Hex())
	if cs, err := w.chain.ChannelState(ctx, rec.ChannelID); err == nil {
		err := w.update(rec.ChannelID, func(r *channelstore.Record) {
			r.Balance, r.TotalClaimed = cs.Balance, cs.TotalClaimed
			r.SetWithdrawal(cs.PendingWithdrawal, uint64(max(cs.WithdrawRequestedAt, 0)))
		})
		if err != nil {
			return err
		}
		w.say("  channel balance now %s\n", w.cf.show(cs.Balance))
	}
	return w.done(res)
}

// say prints human output; with --json only the final object is printed.
func (w *withdrawer) say(format string, args ...any) {
	if !*w.cf.asJSON {
		fmt.Fprintf(w.out, format, args...)
	}
}

func (w *withdrawer) progress() io.Writer {
	if *w.cf.asJSON {
		return io.Discard
	}
	return w.out
}

func (w *withdrawer) done(res withdrawal) error {
	if *w.cf.asJSON {
		return json.NewEncoder(w.out).Encode(res)
	}
	return nil
}

// waitUntil sleeps until deadline, printing how long is left every interval. It prints plain
// lines, so it reads the same on a terminal, in a log or in a pipe.
func waitUntil(ctx context.Context, deadline time.Time, now func() time.Time, sleep func(context.Context, time.Duration) error, every time.Duration, out io.Writer) error {
	for {
		left := deadline.Sub(now())
		if left <= 0 {
			return nil
		}
		fmt.Fprintf(out, "waiting for the withdraw delay: %s left\n", left.Round(time.Second))
		if err := sleep(ctx, min(every, left)); err != nil {
			return err
		}
	}
}
