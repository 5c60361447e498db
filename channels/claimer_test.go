package channels

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// recordingChain records claim transactions and reports the channel state the claims leave. The
// contract side of claims is tested against the real escrow in contracts/escrow and end to end in
// internal/app; this checks which channels the claimer picks and what it records.
type recordingChain struct {
	claims [][]batch.VoucherClaim
}

func (c *recordingChain) ClaimAndSettle(_ context.Context, claims []batch.VoucherClaim, _ []byte, _, _ common.Address) (common.Hash, error) {
	c.claims = append(c.claims, claims)
	return common.HexToHash("0x01"), nil
}

func (c *recordingChain) ChannelState(context.Context, common.Hash) (store.ChannelChainState, error) {
	return store.ChannelChainState{Balance: big.NewInt(10_000), TotalClaimed: big.NewInt(0), Block: 9}, nil
}

func TestClaimerPicksChargedChannelsOnly(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
