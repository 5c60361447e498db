package escrow_test

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/escrow"
)

// The invariant test drives the contract with a seeded random sequence of deposits, vouchers,
// claims, settlements, withdrawals, refunds and time jumps, mirrors every step in a plain Go
// model, and after each step checks the chain against the model and against the properties
// the escrow promises:
//
//   - the receiver side never claims more than the payer signed, nor more than was deposited;
//   - the payer can always start taking back balance − totalClaimed;
//   - tokens are conserved: the contract holds exactly Σ balance − settled, the receiver holds
//     exactly what was settled, and every payer holds what it was minted, minus deposits, plus
//     refunds and withdrawals.

// invariantSeeds each drive one run of invariantSteps steps.
var invariantSeeds = []uint64{20240611, 7, 4242}

const invariantSteps = 200

type simChannel struct {
	cfg        escrow.ChannelConfig
	payerKey   *ecdsa.PrivateKey
	voucherKey *ecdsa.PrivateKey // the payer authorizer's key
	delay      uint64

	deposited, balance, claimed int64
	signedMax                   int64 // highest voucher ceiling the payer signed
	pendingAmount               int64
	pendingAt                   uint64 // 0: no withdrawal pending
	nonce                       int64
}

func (c *simChannel) available() int64 { return c.balance - c.claimed }

type invariantRun struct {
	t        *testing.T
	seed     uint64
	e        *env
	rng      *rand.Rand
	channels []*simChannel
	wallets  map[common.Address]int64
	minted   int64
	claimed  int64 // receiver's cumulative claims over all channels
	settled  int64
	log      []string
	outcomes map[string]int // what the run exercised, for the log
}

func TestInvariantsRandomized(t *testing.T) {
	for _, seed := range invariantSeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runInvariants(t, seed) })
	}
}

func runInvariants(t *testing.T, seed uint64) {
	e := newEnv(t)
	run := &invariantRun{
		t: t, seed: seed, e: e, rng: rand.New(rand.NewPCG(seed, 1)),
		wallets: map[common.Address]int64{}, outcomes: map[string]int{},
	}

	a1, a2 := e.config(payerKey, 1), e.config(payerKey, 2)
	b1 := e.config(payer2Key, 1)
	b1.PayerAuthorizer = session
	b2 := e.config(payer2Key, 2)
	b2.WithdrawDelay = big.NewInt(3_600)
	for _, ch := range []struct {
		cfg        escrow.ChannelConfig
		key, voter *ecdsa.PrivateKey
	}{{a1, payerKey, payerKey}, {a2, payerKey, payerKey}, {b1, payer2Key, sessionKey}, {b2, payer2Key, payer2Key}} {
		run.channels = append(run.channels, &simChannel{cfg: ch.cfg, payerKey: ch.key, voucherKey: ch.voter, delay: ch.cfg.WithdrawDelay.Uint64()})
	}

	for step := range invariantSteps {
		action := run.step()
		run.log = append(run.log, fmt.Sprintf("%3d %s", step, action))
		run.check(step)
	}
	run.drain()
}

func (r *invariantRun) fail(format string, args ...any) {
	r.t.Helper()
	tail := r.log
	if len(tail) > 15 {
		tail = tail[len(tail)-15:]
	}
	r.t.Fatalf("seed %d: %s\nlast steps:\n%s", r.seed, fmt.Sprintf(format, args...), strings.Join(tail, "\n"))
}

// send mines a transaction and compares its outcome with what the model expects.
func (r *invariantRun) send(key *ecdsa.PrivateKey, to common.Address, calldata []byte, wantOK bool) *types.Receipt {
	r.t.Helper()
	rec := r.e.send(key, to, calldata)
	if ok := rec.Status == types.ReceiptStatusSuccessful; ok != wantOK {
		reason := ""
		if !ok {
			reason = describeRevert(r.e.revertData(key, to, calldata))
		}
		r.fail("transaction succeeded=%v, model expects %v (%s)", ok, wantOK, reason)
	}
	return rec
}

func (r *invariantRun) blockTime(rec *types.Receipt) uint64 {
	h, err := r.e.client.HeaderByNumber(r.t.Context(), rec.BlockNumber)
	if err != nil {
		r.t.Fatal(err)
	}
	return h.Time
}

func (r *invariantRun) pick() *simChannel { return r.channels[r.rng.IntN(len(r.channels))] }

func (r *invariantRun) step() string {
	switch n := r.rng.IntN(100); {
	case n < 12:
		return r.deposit(r.pick())
	case n < 37:
		return r.sign(r.pick())
	case n < 62:
		return r.claim()
	case n < 68:
		return r.settle()
	case n < 76:
		return r.initiateWithdraw(r.pick())
	case n < 82:
		return r.finalizeWithdraw(r.pickPending())
	case n < 90:
		return r.refund(r.pick())
	default:
		return r.jump()
	}
}

// pickPending prefers a channel with a withdrawal in progress.
func (r *invariantRun) pickPending() *simChannel {
	if r.rng.IntN(4) > 0 {
		for _, i := range r.rng.Perm(len(r.channels)) {
			if r.channels[i].pendingAt != 0 {
				return r.channels[i]
			}
		}
	}
	return r.pick()
}

func (r *invariantRun) deposit(c *simChannel) string {
	amount := 1 + r.rng.Int64N(5_000)
	// The payer is minted exactly what it deposits, so its wallet stays as the model has it.
	r.e.mint(c.cfg.Payer, amount)
	r.minted += amount
	r.send(relayerKey, r.e.settlement, r.e.depositCall(c.payerKey, c.cfg, amount), true)
	r.outcomes["deposit"]++
	c.deposited += amount
	c.balance += amount
	return fmt.Sprintf("deposit %d into %x", amount, c.cfg.Salt[31])
}

// sign stands for the payer paying requests: it signs a higher cumulative voucher (off chain).
func (r *invariantRun) sign(c *simChannel) string {
	c.signedMax += 1 + r.rng.Int64N(3_000)
	return fmt.Sprintf("voucher for %x up to %d", c.cfg.Salt[31], c.signedMax)
}

func (r *invariantRun) claim() string {
	var rows []escrow.VoucherClaim
	var targets []int64
	var picked []*simChannel
	valid := true
	for _, c := range r.channels {
		if r.rng.IntN(2) == 0 {
			continue
		}
		var target int64
		covered := min(c.signedMax, c.balance) // what a claim can reach without reverting
		switch {
		case covered > c.claimed && r.rng.IntN(12) > 0:
			target = c.claimed + 1 + r.rng.Int64N(covered-c.claimed)
		case c.claimed > 0 && r.rng.IntN(3) == 0:
			target = r.rng.Int64N(c.claimed + 1) // stale: must be skipped
		case c.signedMax > c.claimed && r.rng.IntN(4) == 0:
			target = c.claimed + 1 + r.rng.Int64N(c.signedMax-c.claimed) // may outrun the escrow
		default:
			continue
		}
		if target > c.claimed && target > c.balance {
			valid = false // the voucher outruns the escrow: the whole batch must fail
		}
		rows = append(rows, r.e.row(c.voucherKey, c.cfg, c.signedMax, target))
		targets = append(targets, target)
		picked = append(picked, c)
	}
	if len(rows) == 0 {
		return "claim: nothing to claim"
	}
	r.outcomes[fmt.Sprintf("claim valid=%v", valid)]++
	how := "claim"
	if r.rng.IntN(2) == 0 {
		how = "claimWithSignature"
		r.send(relayerKey, r.e.settlement, bs.PackClaimWithSignature(rows, r.e.claimBatchSig(receiverAuthKey, rows)), valid)
	} else {
		r.send(receiverKey, r.e.settlement, bs.PackClaim(rows), valid)
	}
	if valid {
		for i, c := range picked {
			if targets[i] > c.claimed {
				r.claimed += targets[i] - c.claimed
				c.claimed = targets[i]
			}
		}
	}
	return fmt.Sprintf("%s %v (valid %v)", how, targets, valid)
}

func (r *invariantRun) settle() string {
	r.send(strangerKey, r.e.settlement, bs.PackSettle(receiver, r.e.token), true)
	paid := r.claimed - r.settled
	r.outcomes[fmt.Sprintf("settle paid=%v", paid > 0)]++
	r.wallets[receiver] += paid
	r.settled = r.claimed
	return fmt.Sprintf("settle %d", paid)
}

func (r *invariantRun) initiateWithdraw(c *simChannel) string {
	amount := r.rng.Int64N(c.available() + 1) // zero is refused
	if r.rng.IntN(5) == 0 {
		amount += 1 + r.rng.Int64N(500) // more than is unclaimed: refused
	}
	key := c.payerKey
	if r.rng.IntN(2) == 0 {
		key = c.voucherKey // the payer authorizer may act for the payer
	}
	ok := c.pendingAt == 0 && amount > 0 && amount <= c.available()
	rec := r.send(key, r.e.settlement, bs.PackInitiateWithdraw(c.cfg, big.NewInt(amount)), ok)
	if ok {
		c.pendingAmount, c.pendingAt = amount, r.blockTime(rec)
	}
	r.outcomes[fmt.Sprintf("initiateWithdraw ok=%v", ok)]++
	return fmt.Sprintf("initiateWithdraw %d from %x (ok %v)", amount, c.cfg.Salt[31], ok)
}

func (r *invariantRun) finalizeWithdraw(c *simChannel) string {
	rec := r.e.send(c.payerKey, r.e.settlement, bs.PackFinalizeWithdraw(c.cfg))
	ok := c.pendingAt != 0 && r.blockTime(rec) >= c.pendingAt+c.delay
	if got := rec.Status == types.ReceiptStatusSuccessful; got != ok {
		r.fail("finalizeWithdraw succeeded=%v, model expects %v", got, ok)
	}
	r.outcomes[fmt.Sprintf("finalizeWithdraw ok=%v", ok)]++
	if !ok {
		return fmt.Sprintf("finalizeWithdraw %x refused", c.cfg.Salt[31])
	}
	payout := min(c.pendingAmount, c.available())
	c.balance -= payout
	c.pendingAmount, c.pendingAt = 0, 0
	r.wallets[c.cfg.Payer] += payout
	return fmt.Sprintf("finalizeWithdraw %x paid %d", c.cfg.Salt[31], payout)
}

func (r *invariantRun) refund(c *simChannel) string {
	return r.refundAmount(c, 1+r.rng.Int64N(c.available()+1_000))
}

func (r *invariantRun) refundAmount(c *simChannel, amount int64) string {
	if r.rng.IntN(2) == 0 {
		r.send(receiverKey, r.e.settlement, bs.PackRefund(c.cfg, big.NewInt(amount)), true)
	} else {
		r.send(relayerKey, r.e.settlement, r.e.refundCall(receiverAuthKey, c.cfg, amount, c.nonce), true)
	}
	c.nonce++
	payout := min(amount, c.available())
	c.balance -= payout
	if c.pendingAt != 0 && payout > 0 {
		if payout >= c.pendingAmount {
			c.pendingAmount, c.pendingAt = 0, 0
		} else {
			c.pendingAmount -= payout
		}
	}
	r.wallets[c.cfg.Payer] += payout
	r.outcomes[fmt.Sprintf("refund moved=%v", payout > 0)]++
	return fmt.Sprintf("refund %d of %x paid %d", amount, c.cfg.Salt[31], payout)
}

func (r *invariantRun) jump() string {
	seconds := 1 + r.rng.Uint64N(2_000)
	r.e.advance(seconds)
	return fmt.Sprintf("time +%ds", seconds)
}

// check compares the chain with the model and tests the escrow's promises.
func (r *invariantRun) check(step int) {
	r.t.Helper()
	e := r.e
	var sumBalance, sumClaimed int64
	for _, c := range r.channels {
		got := e.state(c.cfg)
		want := channelState{balance: c.balance, totalClaimed: c.claimed, withdrawAmount: c.pendingAmount, withdrawAt: c.pendingAt, refundNonce: c.nonce}
		if got != want {
			r.fail("step %d: channel %x is %+v on chain, %+v in the model", step, c.cfg.Salt[31], got, want)
		}
		if c.claimed > c.signedMax || c.claimed > c.deposited || c.claimed > c.balance || c.balance > c.deposited {
			r.fail("step %d: channel %x claimed %d, signed %d, deposited %d, balance %d", step, c.cfg.Salt[31], c.claimed, c.signedMax, c.deposited, c.balance)
		}
		if c.pendingAt == 0 && c.available() > 0 {
			// The payer's exit is always open: a withdrawal of everything unclaimed would start.
			msg := ethereum.CallMsg{From: c.cfg.Payer, To: &e.settlement, Gas: 1_000_000, Data: bs.PackInitiateWithdraw(c.cfg, big.NewInt(c.available()))}
			if _, err := e.client.CallContract(r.t.Context(), msg, nil); err != nil {
				r.fail("step %d: payer of %x cannot start withdrawing %d: %v", step, c.cfg.Salt[31], c.available(), err)
			}
		}
		sumBalance += c.balance
		sumClaimed += c.claimed
	}
	if sumClaimed != r.claimed {
		r.fail("step %d: model bookkeeping: channels claimed %d, receiver %d", step, sumClaimed, r.claimed)
	}
	if held := e.balanceOf(e.settlement).Int64(); held != sumBalance-r.settled {
		r.fail("step %d: contract holds %d, want Σ balance %d − settled %d", step, held, sumBalance, r.settled)
	}
	if claimed, settled := e.receiverTotals(receiver, e.token); claimed != r.claimed || settled != r.settled {
		r.fail("step %d: receivers() %d/%d, model %d/%d", step, claimed, settled, r.claimed, r.settled)
	}
	for _, a := range []common.Address{payer, payer2, receiver} {
		if got := e.balanceOf(a).Int64(); got != r.wallets[a] {
			r.fail("step %d: %s holds %d, model %d", step, a, got, r.wallets[a])
		}
	}
	supply := call(e, e.token, token.PackTotalSupply(), token.UnpackTotalSupply).Int64()
	if supply != r.minted {
		r.fail("step %d: total supply %d, minted %d", step, supply, r.minted)
	}
}

// drain ends the run: the receiver is paid, every payer takes back everything unclaimed (half
// the channels by refund, half by timed withdrawal) and the contract must end up empty.
func (r *invariantRun) drain() {
	r.settle()
	for i, c := range r.channels {
		if i%2 == 0 && c.available() > 0 {
			r.refundAmount(c, c.available())
			if c.available() > 0 {
				r.fail("refund left %d in %x", c.available(), c.cfg.Salt[31])
			}
			continue
		}
		if c.pendingAt != 0 {
			r.e.advance(c.delay)
			r.finalizeWithdraw(c)
		}
		if c.available() > 0 {
			amount := c.available()
			rec := r.send(c.payerKey, r.e.settlement, bs.PackInitiateWithdraw(c.cfg, big.NewInt(amount)), true)
			c.pendingAmount, c.pendingAt = amount, r.blockTime(rec)
			r.e.advance(c.delay)
			r.finalizeWithdraw(c)
		}
	}
	r.check(invariantSteps)
	if held := r.e.balanceOf(r.e.settlement).Int64(); held != 0 {
		r.fail("contract still holds %d after everyone left", held)
	}
	var paidIn int64
	for _, c := range r.channels {
		paidIn += c.deposited
	}
	if got := r.wallets[receiver]; got != r.claimed {
		r.fail("receiver got %d, claimed %d", got, r.claimed)
	}
	r.t.Logf("seed %d: %d deposited, %d claimed and settled, %d returned to payers; steps: %v",
		r.seed, paidIn, r.claimed, paidIn-r.claimed, r.outcomes)
}
