package batchmethod

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// openStore opens a SQLite store in a temporary directory, closed when the test ends.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// recordingChain records claim transactions and reports the channel state the claims leave. The
// contract side of claims is tested against the real escrow in contracts/escrow and end to end in
// internal/app; this checks which channels the claimer picks and what it records.
type recordingChain struct {
	minedAtOnce
	claims  [][]batch.VoucherClaim
	balance int64 // every channel's balance after a claim; 0 means 10 000
}

func (c *recordingChain) Send(_ context.Context, _ common.Address, data []byte, _ func(common.Hash) error) (common.Hash, error) {
	call, err := decodeEscrowCall(data)
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %w", txn.ErrNotSent, err)
	}
	c.claims = append(c.claims, call.claims)
	return common.HexToHash("0x01"), nil
}

func (c *recordingChain) ChannelState(context.Context, common.Hash) (store.ChannelChainState, error) {
	balance := c.balance
	if balance == 0 {
		balance = 10_000
	}
	return store.ChannelChainState{Balance: big.NewInt(balance), TotalClaimed: big.NewInt(0), Block: 9}, nil
}

func TestClaimerPicksChargedChannelsOnly(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	receiver := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	other := common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
	mk := func(n int, to common.Address, charged int64, withdrawing bool) string {
		id := common.BigToHash(big.NewInt(int64(0xC0DE00 + n))).Hex()
		c := &store.Channel{ID: id, Network: "eip155:1337", Payer: other.Hex(), PayerAuthorizer: other.Hex(), Receiver: to.Hex(),
			ReceiverAuthorizer: receiver.Hex(), Token: other.Hex(), WithdrawDelay: 900, Salt: common.Hash{}.Hex(), Balance: big.NewInt(10_000)}
		if withdrawing {
			c.WithdrawRequestedAt = 1
		}
		if err := st.CreateChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
		if charged > 0 {
			got, _ := st.GetChannel(ctx, id)
			err := st.ChargeChannel(ctx, store.ChannelCharge{ID: id, ExpectedCharged: got.Charged, ChainVersion: got.ChainVersion,
				Charged: big.NewInt(charged), SignedMax: big.NewInt(charged), Signature: "0x01"})
			if err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	charged := mk(1, receiver, 700, false)
	mk(2, receiver, 0, false) // nothing charged
	mk(3, other, 900, false)  // another receiver's channel
	key, _ := crypto.GenerateKey()
	verifier, _ := batch.NewVerifier(batch.VerifierConfig{Network: "eip155:1337"})
	chain := &recordingChain{}
	c := &Claimer{Store: st, Chain: chain, Network: "eip155:1337", Receiver: receiver, Authorizer: key, Verifier: verifier, MinValue: big.NewInt(1000)}

	if res, err := c.RunOnce(ctx); err != nil || res.Channels != 0 || len(chain.claims) != 0 {
		t.Fatalf("700 is below the 1000 minimum: %+v %v", res, err)
	}
	urgent := mk(4, receiver, 200, true) // a pending withdrawal makes the round urgent
	res, err := c.RunOnce(ctx)
	if err != nil || res.Channels != 2 || res.Amount.Int64() != 900 || len(chain.claims) != 1 {
		t.Fatalf("claim round: %+v %v", res, err)
	}
	for _, id := range []string{charged, urgent} {
		ch, _ := st.GetChannel(ctx, id)
		if ch.Claimed.Cmp(ch.Charged) != 0 || ch.SyncedBlock != 9 {
			t.Fatalf("channel %s not recorded as claimed: %+v", id, ch)
		}
	}
	if res, _ := c.RunOnce(ctx); res.Channels != 0 {
		t.Fatalf("claimed channels were claimed again: %+v", res)
	}
}

// TestClaimerCapsAClaimAtTheBalance: a channel charged beyond its balance (claims failed while a
// withdrawal drained it) is claimed up to what it holds, so the escrow does not refuse the whole
// batch; the other channels are claimed in full, and the capped one is not claimed again.
func TestClaimerCapsAClaimAtTheBalance(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	receiver := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	payer := common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
	mk := func(n int, balance, charged int64) string {
		id := common.BigToHash(big.NewInt(int64(0xCA900 + n))).Hex()
		err := st.CreateChannel(ctx, &store.Channel{ID: id, Network: "eip155:1337", Payer: payer.Hex(), PayerAuthorizer: payer.Hex(),
			Receiver: receiver.Hex(), ReceiverAuthorizer: receiver.Hex(), Token: payer.Hex(), WithdrawDelay: 900,
			Salt: common.Hash{}.Hex(), Balance: big.NewInt(balance)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := st.GetChannel(ctx, id)
		err = st.ChargeChannel(ctx, store.ChannelCharge{ID: id, ExpectedCharged: got.Charged, ChainVersion: got.ChainVersion,
			Charged: big.NewInt(charged), SignedMax: big.NewInt(charged), Signature: "0x01"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	over := mk(1, 500, 900)
	fine := mk(2, 10_000, 300)
	key, _ := crypto.GenerateKey()
	verifier, _ := batch.NewVerifier(batch.VerifierConfig{Network: "eip155:1337"})
	chain := &recordingChain{balance: 500}
	c := &Claimer{Store: st, Chain: chain, Network: "eip155:1337", Receiver: receiver, Authorizer: key, Verifier: verifier}
	res, err := c.RunOnce(ctx)
	if err != nil || res.Channels != 2 || res.Amount.Int64() != 800 || len(chain.claims) != 1 {
		t.Fatalf("claim round: %+v %v", res, err)
	}
	if got := []int64{chain.claims[0][0].TotalClaimed.Int64(), chain.claims[0][1].TotalClaimed.Int64()}; got[0]+got[1] != 800 || max(got[0], got[1]) != 500 {
		t.Fatalf("claim rows carry totals %v; want 500 (capped) and 300", got)
	}
	for id, want := range map[string]int64{over: 500, fine: 300} {
		ch, _ := st.GetChannel(ctx, id)
		if ch.Claimed.Int64() != want {
			t.Fatalf("channel %s claimed %s, want %d", id, ch.Claimed, want)
		}
	}
	if res, err := c.RunOnce(ctx); err != nil || res.Channels != 0 || len(chain.claims) != 1 {
		t.Fatalf("second round: %+v %v, %d transactions", res, err, len(chain.claims))
	}
}

// claimFixture makes channels for claimer tests.
type claimFixture struct {
	t        *testing.T
	st       store.Store
	receiver common.Address
	payer    common.Address
}

func newClaimFixture(t *testing.T) *claimFixture {
	return &claimFixture{t: t, st: openStore(t), receiver: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
		payer: common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")}
}

// channel creates channel n with balance and charges it to charged; withdrawing marks a pending
// withdrawal.
func (f *claimFixture) channel(n int, balance, charged int64, withdrawing bool) string {
	f.t.Helper()
	ctx := context.Background()
	id := common.BigToHash(big.NewInt(int64(0xF00000 + n))).Hex()
	c := &store.Channel{ID: id, Network: "eip155:1337", Payer: f.payer.Hex(), PayerAuthorizer: f.payer.Hex(),
		Receiver: f.receiver.Hex(), ReceiverAuthorizer: f.receiver.Hex(), Token: f.payer.Hex(), WithdrawDelay: 900,
		Salt: id, Balance: big.NewInt(balance)} // the salt names the channel in recorded claims
	if withdrawing {
		c.WithdrawRequestedAt = 1
	}
	if err := f.st.CreateChannel(ctx, c); err != nil {
		f.t.Fatal(err)
	}
	f.charge(id, charged)
	return strings.ToLower(id)
}

func (f *claimFixture) charge(id string, to int64) {
	f.t.Helper()
	got, err := f.st.GetChannel(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	err = f.st.ChargeChannel(context.Background(), store.ChannelCharge{ID: id, ExpectedCharged: got.Charged, ChainVersion: got.ChainVersion,
		Charged: big.NewInt(to), SignedMax: big.NewInt(to), Signature: "0x01"})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *claimFixture) claimer(chain ClaimChain, maxBatch int) *Claimer {
	key, _ := crypto.GenerateKey()
	verifier, _ := batch.NewVerifier(batch.VerifierConfig{Network: "eip155:1337"})
	return &Claimer{Store: f.st, Chain: chain, Network: "eip155:1337", Receiver: f.receiver, Authorizer: key, Verifier: verifier, MaxBatch: maxBatch}
}

// claimedIDs lists the channel ids of one recorded claim transaction (fixture channels carry
// their id as salt).
func claimedIDs(claims []batch.VoucherClaim) []string {
	var ids []string
	for _, c := range claims {
		ids = append(ids, strings.ToLower(c.Channel.Salt.Hex()))
	}
	return ids
}

// TestClaimerIsNotStarvedByStuckChannels: more channels than a batch are charged beyond a
// balance already claimed in full, so no claim can advance them; a claimable channel among them
// is still claimed.
func TestClaimerIsNotStarvedByStuckChannels(t *testing.T) {
	ctx := context.Background()
	f := newClaimFixture(t)
	fine := f.channel(99, 10_000, 300, false)
	for n := range 60 { // updated after the claimable one, so they come first by recency
		id := f.channel(n, 500, 900, false)
		if err := f.st.MarkChannelClaimed(ctx, id, big.NewInt(0), big.NewInt(500)); err != nil {
			t.Fatal(err)
		}
	}
	chain := &recordingChain{}
	res, err := f.claimer(chain, 50).RunOnce(ctx)
	if err != nil || res.Channels != 1 || res.Amount.Int64() != 300 {
		t.Fatalf("claim round: %+v %v", res, err)
	}
	if ch, _ := f.st.GetChannel(ctx, fine); ch.Claimed.Int64() != 300 {
		t.Fatalf("claimable channel claimed %s, want 300", ch.Claimed)
	}
}

// TestClaimerTakesWithdrawalsFirstThenTakesTurns: with more claimable channels than a batch, a
// channel whose payer is withdrawing goes first, and the others are claimed in turn even when
// the ones claimed before have been charged again.
func TestClaimerTakesWithdrawalsFirstThenTakesTurns(t *testing.T) {
	ctx := context.Background()
	f := newClaimFixture(t)
	a, b, c := f.channel(1, 10_000, 100, false), f.channel(2, 10_000, 100, false), f.channel(3, 10_000, 100, false)
	w := f.channel(4, 10_000, 100, true)
	chain := &recordingChain{}
	cl := f.claimer(chain, 2)
	var rounds [][]string
	for round := range 3 {
		res, err := cl.RunOnce(ctx)
		if err != nil || res.Channels != 2 {
			t.Fatalf("round %d: %+v %v", round, res, err)
		}
		rounds = append(rounds, claimedIDs(chain.claims[round]))
		for _, id := range rounds[round] {
			if id != w {
				ch, _ := f.st.GetChannel(ctx, id)
				f.charge(id, ch.Charged.Int64()+100) // busy channels keep being charged
			}
		}
	}
	want := [][]string{{w, a}, {b, c}, {a, b}}
	if fmt.Sprint(rounds) != fmt.Sprint(want) {
		t.Fatalf("rounds claimed %v, want %v", rounds, want)
	}
}
