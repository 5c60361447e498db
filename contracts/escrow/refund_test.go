package escrow_test

import (
	"math/big"
	"testing"

	"github.com/payper/payper/contracts/escrow"
)

func TestRefundWithSignature(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 10_000)
	e.claimSigned(e.row(payerKey, c, 3_000, 3_000))

	// A relayer submits the receiver authorizer's signed refund at the current nonce.
	refund := e.refundCall(receiverAuthKey, c, 2_000, 0)
	r := e.mustSucceed(relayerKey, e.settlement, refund)
	wantBalance(t, e, payer, 2_000)
	wantState(t, e, c, channelState{balance: 8_000, totalClaimed: 3_000, refundNonce: 1})
	ev, err := bs.UnpackRefundedEvent(r.Logs[0])
	if err != nil || ev.ChannelId != e.channelID(c) || ev.Sender != relayer || ev.Amount.Int64() != 2_000 {
		t.Fatalf("Refunded %+v, %v", ev, err)
	}

	// The same signature cannot be used twice.
	e.mustRevert(relayerKey, e.settlement, refund, escrow.BatchSettlementInvalidRefundNonceErrorID())
	// Nor a signature for a nonce that is not current yet.
	e.mustRevert(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 1_000, 2), escrow.BatchSettlementInvalidRefundNonceErrorID())
	// Signed by the wrong key, or over another amount.
	e.mustRevert(relayerKey, e.settlement, e.refundCall(otherAuthKey, c, 1_000, 1), escrow.BatchSettlementInvalidSignatureErrorID())
	e.mustRevert(relayerKey, e.settlement, e.refundCall(payerKey, c, 1_000, 1), escrow.BatchSettlementInvalidSignatureErrorID())
	signedSmall := e.refundCall(receiverAuthKey, c, 10, 1)
	args, err := bs.GetABI().Methods["refundWithSignature"].Inputs.Unpack(signedSmall[4:])
	if err != nil {
		t.Fatal(err)
	}
	inflated := bs.PackRefundWithSignature(c, big.NewInt(5_000), big.NewInt(1), args[3].([]byte))
	e.mustRevert(relayerKey, e.settlement, inflated, escrow.BatchSettlementInvalidSignatureErrorID())
	wantState(t, e, c, channelState{balance: 8_000, totalClaimed: 3_000, refundNonce: 1})

	// A refund larger than what is unclaimed returns only the unclaimed part.
	e.mustSucceed(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 1_000_000, 1))
	wantBalance(t, e, payer, 7_000)
	wantState(t, e, c, channelState{balance: 3_000, totalClaimed: 3_000, refundNonce: 2})

	// With nothing unclaimed a refund moves nothing, yet it uses up the nonce.
	r = e.mustSucceed(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 5, 2))
	if len(r.Logs) != 0 {
		t.Fatalf("a refund of nothing logged %d events", len(r.Logs))
	}
	wantState(t, e, c, channelState{balance: 3_000, totalClaimed: 3_000, refundNonce: 3})

	// Zero is refused and leaves the nonce alone.
	e.mustRevert(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 0, 3), escrow.BatchSettlementZeroRefundErrorID())
	wantState(t, e, c, channelState{balance: 3_000, totalClaimed: 3_000, refundNonce: 3})

	// The receiver's claimed tokens are all still there.
	e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
	wantBalance(t, e, receiver, 3_000)
	wantBalance(t, e, e.settlement, 0)
}

func TestDirectRefund(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 1_000)
	presigned := e.refundCall(receiverAuthKey, c, 100, 0)

	e.mustRevert(strangerKey, e.settlement, bs.PackRefund(c, big.NewInt(100)), escrow.BatchSettlementNotAuthorizedToRefundErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackRefund(c, big.NewInt(100)), escrow.BatchSettlementNotAuthorizedToRefundErrorID())
	e.mustSucceed(receiverKey, e.settlement, bs.PackRefund(c, big.NewInt(300)))
	e.mustSucceed(receiverAuthKey, e.settlement, bs.PackRefund(c, big.NewInt(200)))
	wantBalance(t, e, payer, 500)
	wantState(t, e, c, channelState{balance: 500, refundNonce: 2})

	// Direct refunds advance the nonce too, so a signature made before them is void.
	e.mustRevert(relayerKey, e.settlement, presigned, escrow.BatchSettlementInvalidRefundNonceErrorID())

	// Refunding the rest of a channel without claims closes it.
	r := e.mustSucceed(receiverKey, e.settlement, bs.PackRefund(c, big.NewInt(500)))
	if !hasEvent(r, isChannelClosed) || !hasEvent(r, isRefunded) {
		t.Fatal("full refund did not report Refunded and ChannelClosed")
	}
	wantState(t, e, c, channelState{refundNonce: 3})
	wantBalance(t, e, payer, 1_000)
}

func TestRefundShrinksPendingWithdrawal(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 10_000)
	e.mustSucceed(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(6_000)))
	started := e.now()

	e.mustSucceed(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 2_000, 0))
	wantState(t, e, c, channelState{balance: 8_000, withdrawAmount: 4_000, withdrawAt: started, refundNonce: 1})

	// A refund covering the rest of the withdrawal cancels it.
	e.mustSucceed(relayerKey, e.settlement, e.refundCall(receiverAuthKey, c, 4_000, 1))
	wantState(t, e, c, channelState{balance: 4_000, refundNonce: 2})
	wantBalance(t, e, payer, 6_000)
	e.advance(uint64(escrow.MinWithdrawDelay))
	e.mustRevert(payerKey, e.settlement, bs.PackFinalizeWithdraw(c), escrow.BatchSettlementWithdrawalNotPendingErrorID())

	// And the payer may start a new one.
	e.mustSucceed(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(4_000)))
}

// The facilitator's cooperative refund: claim the last voucher and refund the rest in one
// multicall transaction.
func TestMulticallClaimThenRefund(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 10_000)

	rows := []escrow.VoucherClaim{e.row(payerKey, c, 3_200, 3_200)}
	claim := bs.PackClaimWithSignature(rows, e.claimBatchSig(receiverAuthKey, rows))
	refund := e.refundCall(receiverAuthKey, c, 6_800, 0)
	r := e.mustSucceed(relayerKey, e.settlement, bs.PackMulticall([][]byte{claim, refund}))
	if len(claimedEvents(t, r)) != 1 || !hasEvent(r, isRefunded) {
		t.Fatal("multicall did not claim and refund")
	}
	wantState(t, e, c, channelState{balance: 3_200, totalClaimed: 3_200, refundNonce: 1})
	wantBalance(t, e, payer, 6_800)

	// A failing inner call reverts the whole multicall with the inner error.
	e.mustRevert(relayerKey, e.settlement, bs.PackMulticall([][]byte{bs.PackSettle(receiver, e.token), refund}),
		escrow.BatchSettlementInvalidRefundNonceErrorID())
	wantBalance(t, e, receiver, 0)
}
