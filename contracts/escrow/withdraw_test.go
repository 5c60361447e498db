package escrow_test

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/escrow"
)

func hasEvent(r *types.Receipt, unpack func(*types.Log) error) bool {
	for _, log := range r.Logs {
		if unpack(log) == nil {
			return true
		}
	}
	return false
}

func isChannelClosed(log *types.Log) error {
	_, err := bs.UnpackChannelClosedEvent(log)
	return err
}

func isChannelCreated(log *types.Log) error {
	_, err := bs.UnpackChannelCreatedEvent(log)
	return err
}

func isRefunded(log *types.Log) error {
	_, err := bs.UnpackRefundedEvent(log)
	return err
}

func TestWithdrawalClaimsDuringDelayComeFirst(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	delay := uint64(escrow.MinWithdrawDelay)
	e.deposit(payerKey, c, 10_000)
	e.claimSigned(e.row(payerKey, c, 2_000, 2_000))

	// The payer asks for everything not yet claimed.
	r := e.mustSucceed(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(8_000)))
	started := e.now()
	wantState(t, e, c, channelState{balance: 10_000, totalClaimed: 2_000, withdrawAmount: 8_000, withdrawAt: started})
	ev, err := bs.UnpackWithdrawInitiatedEvent(r.Logs[0])
	if err != nil || ev.ChannelId != e.channelID(c) || ev.Amount.Int64() != 8_000 || ev.FinalizeAfter.Uint64() != started+delay {
		t.Fatalf("WithdrawInitiated %+v, %v", ev, err)
	}

	e.mustRevert(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1)), escrow.BatchSettlementWithdrawalAlreadyPendingErrorID())

	// Too early.
	e.advance(delay - 100)
	e.mustRevert(payerKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementWithdrawDelayNotElapsedErrorID())

	// The receiver claims its latest voucher during the notice period.
	e.claimSigned(e.row(payerKey, c, 5_000, 5_000))

	e.advance(100)
	r = e.mustSucceed(payerKey, e.settlement, bs.PackFinalizeWithdraw(c))
	// Requested 8000, but only 5000 is unclaimed now.
	wantBalance(t, e, payer, 5_000)
	wantState(t, e, c, channelState{balance: 5_000, totalClaimed: 5_000})
	if fin, err := bs.UnpackWithdrawFinalizedEvent(r.Logs[0]); err != nil || fin.Amount.Int64() != 5_000 || fin.Sender != payer {
		t.Fatalf("WithdrawFinalized %+v, %v", fin, err)
	}
	if hasEvent(r, isChannelClosed) {
		t.Fatal("a channel with claims reported closed")
	}

	// The receiver still gets everything it claimed.
	e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
	wantBalance(t, e, receiver, 5_000)
	wantBalance(t, e, e.settlement, 0)

	e.mustRevert(payerKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementWithdrawalNotPendingErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1)), escrow.BatchSettlementWithdrawAmountExceedsAvailableErrorID())
}

func TestWithdrawalRejects(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	c.PayerAuthorizer = session
	e.deposit(payerKey, c, 1_000)
	e.claimSigned(e.row(sessionKey, c, 400, 400))

	// Only the payer side may start a withdrawal.
	e.mustRevert(receiverKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1)), escrow.BatchSettlementInvalidChannelErrorID())
	e.mustRevert(receiverAuthKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1)), escrow.BatchSettlementInvalidChannelErrorID())
	e.mustRevert(strangerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1)), escrow.BatchSettlementInvalidChannelErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(0)), escrow.BatchSettlementNothingToWithdrawErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(601)), escrow.BatchSettlementWithdrawAmountExceedsAvailableErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementWithdrawalNotPendingErrorID())

	// The payer authorizer may act for the payer; the money still goes to the payer.
	e.mustSucceed(sessionKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(600)))
	e.advance(uint64(escrow.MinWithdrawDelay))
	e.mustRevert(strangerKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementNotAuthorizedToFinalizeWithdrawErrorID())
	e.mustRevert(receiverKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementNotAuthorizedToFinalizeWithdrawErrorID())
	e.mustSucceed(sessionKey, e.settlement, bs.PackFinalizeWithdraw(c))
	wantBalance(t, e, payer, 600)
	wantBalance(t, e, session, 0)
	wantState(t, e, c, channelState{balance: 400, totalClaimed: 400})
}

// A full withdrawal from a channel without claims closes it; it can be funded again.
func TestWithdrawalClosesChannel(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 1_000)
	e.mustSucceed(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(1_000)))
	e.advance(uint64(escrow.MinWithdrawDelay))
	r := e.mustSucceed(payerKey, e.settlement, bs.PackFinalizeWithdraw(c))
	if !hasEvent(r, isChannelClosed) {
		t.Fatal("no ChannelClosed")
	}
	wantState(t, e, c, channelState{})
	wantBalance(t, e, payer, 1_000)

	if r := e.deposit(payerKey, c, 50); !hasEvent(r, isChannelCreated) {
		t.Fatal("funding a closed channel again did not announce it")
	}
}
