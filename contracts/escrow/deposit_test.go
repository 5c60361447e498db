package escrow_test

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/contracts/escrow"
)

func TestDepositThroughCollector(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	id := e.channelID(c)
	e.mint(payer, 10_000)

	r := e.mustSucceed(relayerKey, e.settlement, e.depositCall(payerKey, c, 6_000))
	t.Logf("gas: first deposit %d", r.GasUsed)
	wantBalance(t, e, payer, 4_000)
	wantBalance(t, e, e.settlement, 6_000)
	wantBalance(t, e, e.collector, 0)
	wantState(t, e, c, channelState{balance: 6_000})

	var created, deposited bool
	for _, log := range r.Logs {
		if log.Address != e.settlement {
			continue
		}
		if ev, err := bs.UnpackChannelCreatedEvent(log); err == nil {
			created = true
			if ev.ChannelId != id || !sameConfig(ev.Config, c) {
				t.Errorf("ChannelCreated %+v", ev)
			}
		}
		if ev, err := bs.UnpackDepositedEvent(log); err == nil {
			deposited = true
			if ev.ChannelId != id || ev.Sender != relayer || ev.Amount.Int64() != 6_000 || ev.NewBalance.Int64() != 6_000 {
				t.Errorf("Deposited %+v", ev)
			}
		}
	}
	if !created || !deposited {
		t.Fatalf("events: ChannelCreated %v, Deposited %v", created, deposited)
	}

	// A top-up adds to the balance and does not announce a new channel.
	r = e.mustSucceed(relayerKey, e.settlement, e.depositCall(payerKey, c, 4_000))
	t.Logf("gas: top-up %d", r.GasUsed)
	wantState(t, e, c, channelState{balance: 10_000})
	wantBalance(t, e, payer, 0)
	wantBalance(t, e, e.settlement, 10_000)
	for _, log := range r.Logs {
		if _, err := bs.UnpackChannelCreatedEvent(log); err == nil {
			t.Fatal("top-up emitted ChannelCreated")
		}
	}
}

func TestDepositAuthorizationIsSingleUse(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.mint(payer, 10_000)
	deposit := e.depositCall(payerKey, c, 3_000)
	e.mustSucceed(relayerKey, e.settlement, deposit)

	// Replaying the same authorization fails inside the token.
	if r := e.send(relayerKey, e.settlement, deposit); r.Status != 0 {
		t.Fatal("replayed deposit succeeded")
	}
	if got := describeRevert(e.revertData(relayerKey, e.settlement, deposit)); got != "Error(FiatTokenV2: authorization is used or canceled)" {
		t.Fatalf("replay reverted with %s", got)
	}

	// The nonce binds the authorization to the channel: the same signature cannot fund another.
	other := e.config(payerKey, 2)
	redirected := bs.PackDeposit(other, big.NewInt(3_000), e.collector, unpackDeposit(t, e.depositCall(payerKey, c, 3_000)).collectorData)
	if r := e.send(relayerKey, e.settlement, redirected); r.Status != 0 {
		t.Fatal("authorization for one channel funded another")
	}
	wantState(t, e, c, channelState{balance: 3_000})
	wantState(t, e, other, channelState{})
	wantBalance(t, e, payer, 7_000)
}

type depositArgs struct{ collectorData []byte }

func unpackDeposit(t *testing.T, calldata []byte) depositArgs {
	t.Helper()
	args, err := bs.GetABI().Methods["deposit"].Inputs.Unpack(calldata[4:])
	if err != nil {
		t.Fatal(err)
	}
	return depositArgs{collectorData: args[3].([]byte)}
}

func TestDepositRejects(t *testing.T) {
	e := newEnv(t)
	e.mint(payer, 1_000_000)
	valid := e.config(payerKey, 1)

	cases := []struct {
		name   string
		mutate func(*escrow.ChannelConfig)
		amount int64
		want   common.Hash
	}{
		{"zero payer", func(c *escrow.ChannelConfig) { c.Payer = common.Address{} }, 1, escrow.BatchSettlementInvalidChannelErrorID()},
		{"zero receiver", func(c *escrow.ChannelConfig) { c.Receiver = common.Address{} }, 1, escrow.BatchSettlementInvalidChannelErrorID()},
		{"zero receiver authorizer", func(c *escrow.ChannelConfig) { c.ReceiverAuthorizer = common.Address{} }, 1, escrow.BatchSettlementInvalidChannelErrorID()},
		{"zero token", func(c *escrow.ChannelConfig) { c.Token = common.Address{} }, 1, escrow.BatchSettlementInvalidChannelErrorID()},
		{"delay too short", func(c *escrow.ChannelConfig) { c.WithdrawDelay = big.NewInt(escrow.MinWithdrawDelay - 1) }, 1, escrow.BatchSettlementWithdrawDelayOutOfRangeErrorID()},
		{"delay too long", func(c *escrow.ChannelConfig) { c.WithdrawDelay = big.NewInt(escrow.MaxWithdrawDelay + 1) }, 1, escrow.BatchSettlementWithdrawDelayOutOfRangeErrorID()},
		{"zero amount", func(*escrow.ChannelConfig) {}, 0, escrow.BatchSettlementZeroDepositErrorID()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.mutate(&c)
			e.t = t
			e.mustRevert(relayerKey, e.settlement, e.depositCall(payerKey, c, tc.amount), tc.want)
		})
	}
	e.t = t

	// The bounds themselves are allowed.
	for i, delay := range []int64{escrow.MinWithdrawDelay, escrow.MaxWithdrawDelay} {
		c := valid
		c.Salt[0] = byte(i + 1)
		c.WithdrawDelay = big.NewInt(delay)
		e.mustSucceed(relayerKey, e.settlement, e.depositCall(payerKey, c, 1))
	}

	// No collector.
	noCollector := bs.PackDeposit(valid, big.NewInt(1), common.Address{}, nil)
	e.mustRevert(relayerKey, e.settlement, noCollector, escrow.BatchSettlementInvalidCollectorErrorID())

	// A balance that would pass uint128.
	e.mustSucceed(relayerKey, e.settlement, e.depositCall(payerKey, valid, 5))
	maxU128 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	overflow := bs.PackDeposit(valid, maxU128, e.collector, collectorData(big.NewInt(0), big.NewInt(1<<40), big.NewInt(99), make([]byte, 65)))
	e.mustRevert(relayerKey, e.settlement, overflow, escrow.BatchSettlementDepositOverflowErrorID())
	wantState(t, e, valid, channelState{balance: 5})

	// The collector serves only its settlement contract.
	direct := coll.PackCollect(payer, e.token, big.NewInt(1), e.channelID(valid), unpackDeposit(t, e.depositCall(payerKey, valid, 1)).collectorData)
	e.mustRevert(strangerKey, e.collector, direct, escrow.ERC3009DepositCollectorOnlyX402BatchSettlementErrorID())
	if got := call(e, e.collector, coll.PackX402BatchSettlement(), coll.UnpackX402BatchSettlement); got != e.settlement {
		t.Fatalf("collector serves %s", got)
	}
}

func TestCollectorRejectsZeroSettlement(t *testing.T) {
	e := newEnv(t)
	_, tx, err := escrow.DeployERC3009DepositCollector(e.opts(deployerKey), e.client, common.Address{})
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Commit()
	if e.receipt(tx).Status != 0 {
		t.Fatal("collector deployed with a zero settlement address")
	}
}
