package escrow_test

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/escrow"
)

// claimedEvents decodes the Claimed events of a receipt.
func claimedEvents(t *testing.T, r *types.Receipt) []*escrow.BatchSettlementClaimed {
	t.Helper()
	var out []*escrow.BatchSettlementClaimed
	for _, log := range r.Logs {
		if ev, err := bs.UnpackClaimedEvent(log); err == nil {
			out = append(out, ev)
		}
	}
	return out
}

func TestClaimSingle(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 10_000)

	// The receiver itself may claim directly; the cumulative total may stay below the ceiling.
	r := e.mustSucceed(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 3_000, 2_500)}))
	wantState(t, e, c, channelState{balance: 10_000, totalClaimed: 2_500})
	if claimed, settled := e.receiverTotals(receiver, e.token); claimed != 2_500 || settled != 0 {
		t.Fatalf("receiver totals %d/%d", claimed, settled)
	}
	evs := claimedEvents(t, r)
	if len(evs) != 1 || evs[0].ChannelId != e.channelID(c) || evs[0].Sender != receiver ||
		evs[0].ClaimAmount.Int64() != 2_500 || evs[0].NewTotalClaimed.Int64() != 2_500 {
		t.Fatalf("Claimed events %+v", evs)
	}
	// No tokens moved.
	wantBalance(t, e, e.settlement, 10_000)
	wantBalance(t, e, receiver, 0)

	// So may the receiver authorizer; the event carries only the increase.
	r = e.mustSucceed(receiverAuthKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 4_000, 4_000)}))
	if evs := claimedEvents(t, r); len(evs) != 1 || evs[0].ClaimAmount.Int64() != 1_500 || evs[0].Sender != receiverAuth {
		t.Fatalf("Claimed events %+v", evs)
	}
	wantState(t, e, c, channelState{balance: 10_000, totalClaimed: 4_000})

	// Anybody else may not.
	e.mustRevert(strangerKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 5_000, 5_000)}),
		escrow.BatchSettlementNotAuthorizedToClaimErrorID())
	e.mustRevert(payerKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 5_000, 5_000)}),
		escrow.BatchSettlementNotAuthorizedToClaimErrorID())
	wantState(t, e, c, channelState{balance: 10_000, totalClaimed: 4_000})
}

func TestClaimBatchAcrossChannels(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.config(payerKey, 1), e.config(payerKey, 2), e.config(payer2Key, 1)
	e.deposit(payerKey, a, 1_000)
	e.deposit(payerKey, b, 2_000)
	e.deposit(payer2Key, c, 3_000)

	rows := []escrow.VoucherClaim{e.row(payerKey, a, 700, 700), e.row(payerKey, b, 1_500, 1_200), e.row(payer2Key, c, 3_000, 3_000)}
	r := e.claimSigned(rows...)
	if evs := claimedEvents(t, r); len(evs) != 3 {
		t.Fatalf("%d Claimed events in one transaction, want 3", len(evs))
	}
	wantState(t, e, a, channelState{balance: 1_000, totalClaimed: 700})
	wantState(t, e, b, channelState{balance: 2_000, totalClaimed: 1_200})
	wantState(t, e, c, channelState{balance: 3_000, totalClaimed: 3_000})
	if claimed, _ := e.receiverTotals(receiver, e.token); claimed != 4_900 {
		t.Fatalf("receiver claimed %d, want 4900", claimed)
	}

	// Resubmitting the same batch is harmless: every row is at or below what is recorded.
	r = e.mustSucceed(relayerKey, e.settlement, bs.PackClaimWithSignature(rows, e.claimBatchSig(receiverAuthKey, rows)))
	if evs := claimedEvents(t, r); len(evs) != 0 {
		t.Fatalf("repeat claimed again: %+v", evs)
	}
	// A batch mixing a stale row with a new one applies only the new one; the stale row's
	// signature is not even looked at.
	stale := e.row(payerKey, a, 700, 500)
	stale.Signature = []byte{1, 2, 3}
	mixed := []escrow.VoucherClaim{stale, e.row(payerKey, b, 2_000, 2_000)}
	r = e.claimSigned(mixed...)
	if evs := claimedEvents(t, r); len(evs) != 1 || evs[0].ClaimAmount.Int64() != 800 {
		t.Fatalf("mixed batch events %+v", evs)
	}
	wantState(t, e, a, channelState{balance: 1_000, totalClaimed: 700})
	wantState(t, e, b, channelState{balance: 2_000, totalClaimed: 2_000})
	if claimed, _ := e.receiverTotals(receiver, e.token); claimed != 5_700 {
		t.Fatalf("receiver claimed %d, want 5700", claimed)
	}
}

func TestClaimRejects(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 1_000)
	claimAs := func(row escrow.VoucherClaim) []byte { return bs.PackClaim([]escrow.VoucherClaim{row}) }

	// More than the voucher allows.
	e.mustRevert(receiverKey, e.settlement, claimAs(e.row(payerKey, c, 500, 501)), escrow.BatchSettlementClaimExceedsCeilingErrorID())
	// More than the channel holds, even with a voucher that high.
	e.mustRevert(receiverKey, e.settlement, claimAs(e.row(payerKey, c, 5_000, 1_001)), escrow.BatchSettlementClaimExceedsBalanceErrorID())
	// Signed by someone other than the payer authorizer.
	e.mustRevert(receiverKey, e.settlement, claimAs(e.row(strangerKey, c, 500, 500)), escrow.BatchSettlementInvalidSignatureErrorID())
	// A signature over a different ceiling.
	forged := e.row(payerKey, c, 100, 100)
	forged.Voucher.MaxClaimableAmount = big.NewInt(900)
	forged.TotalClaimed = big.NewInt(900)
	e.mustRevert(receiverKey, e.settlement, claimAs(forged), escrow.BatchSettlementInvalidSignatureErrorID())
	// The malleated twin of a valid signature.
	twin := e.row(payerKey, c, 500, 500)
	twin.Signature = highSTwin(twin.Signature)
	e.mustRevert(receiverKey, e.settlement, claimAs(twin), escrow.BatchSettlementECDSAInvalidSignatureSErrorID())
	// Garbage.
	short := e.row(payerKey, c, 500, 500)
	short.Signature = short.Signature[:64]
	e.mustRevert(receiverKey, e.settlement, claimAs(short), escrow.BatchSettlementECDSAInvalidSignatureLengthErrorID())
	// Nothing.
	e.mustRevert(receiverKey, e.settlement, bs.PackClaim(nil), escrow.BatchSettlementEmptyBatchErrorID())
	e.mustRevert(relayerKey, e.settlement, bs.PackClaimWithSignature(nil, nil), escrow.BatchSettlementEmptyBatchErrorID())

	// One bad row sinks the whole batch.
	good := e.row(payerKey, c, 400, 400)
	other := e.config(payerKey, 2)
	e.deposit(payerKey, other, 1_000)
	e.mustRevert(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{good, e.row(strangerKey, other, 400, 400)}),
		escrow.BatchSettlementInvalidSignatureErrorID())

	wantState(t, e, c, channelState{balance: 1_000})
	wantState(t, e, other, channelState{balance: 1_000})
	// The valid voucher still works afterwards.
	e.mustSucceed(receiverKey, e.settlement, claimAs(good))
	wantState(t, e, c, channelState{balance: 1_000, totalClaimed: 400})
}

// A channel whose payer authorizer is a separate session key: only that key signs vouchers.
func TestClaimSessionKey(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	c.PayerAuthorizer = session
	e.deposit(payerKey, c, 1_000)

	e.mustRevert(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 300, 300)}),
		escrow.BatchSettlementInvalidSignatureErrorID())
	e.claimSigned(e.row(sessionKey, c, 300, 300))
	wantState(t, e, c, channelState{balance: 1_000, totalClaimed: 300})
}

func TestClaimWithSignatureRejects(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	e.deposit(payerKey, c, 1_000)
	rows := []escrow.VoucherClaim{e.row(payerKey, c, 600, 600)}

	// Signed by an authorizer the channel does not name.
	e.mustRevert(relayerKey, e.settlement, bs.PackClaimWithSignature(rows, e.claimBatchSig(otherAuthKey, rows)),
		escrow.BatchSettlementInvalidSignatureErrorID())
	// Signed by the right key over different rows.
	changed := []escrow.VoucherClaim{e.row(payerKey, c, 600, 500)}
	e.mustRevert(relayerKey, e.settlement, bs.PackClaimWithSignature(rows, e.claimBatchSig(receiverAuthKey, changed)),
		escrow.BatchSettlementInvalidSignatureErrorID())
	// A high-s twin of the authorizer's signature.
	e.mustRevert(relayerKey, e.settlement, bs.PackClaimWithSignature(rows, highSTwin(e.claimBatchSig(receiverAuthKey, rows))),
		escrow.BatchSettlementInvalidSignatureErrorID())

	// All rows must share the first row's authorizer.
	foreign := e.config(payer2Key, 1)
	foreign.ReceiverAuthorizer = otherAuth
	e.deposit(payer2Key, foreign, 1_000)
	mixed := []escrow.VoucherClaim{rows[0], e.row(payer2Key, foreign, 100, 100)}
	e.mustRevert(relayerKey, e.settlement, bs.PackClaimWithSignature(mixed, e.claimBatchSig(receiverAuthKey, mixed)),
		escrow.BatchSettlementNotReceiverAuthorizerErrorID())

	wantState(t, e, c, channelState{balance: 1_000})
	wantState(t, e, foreign, channelState{balance: 1_000})
}

func TestSettlePaysClaimedSum(t *testing.T) {
	e := newEnv(t)
	a, b := e.config(payerKey, 1), e.config(payer2Key, 1)
	e.deposit(payerKey, a, 5_000)
	e.deposit(payer2Key, b, 5_000)
	e.claimSigned(e.row(payerKey, a, 1_000, 1_000), e.row(payer2Key, b, 2_500, 2_345))

	// Anyone may settle; the receiver gets exactly what was claimed, in one transfer.
	r := e.mustSucceed(strangerKey, e.settlement, bs.PackSettle(receiver, e.token))
	wantBalance(t, e, receiver, 3_345)
	wantBalance(t, e, e.settlement, 10_000-3_345)
	if claimed, settled := e.receiverTotals(receiver, e.token); claimed != 3_345 || settled != 3_345 {
		t.Fatalf("receiver totals %d/%d", claimed, settled)
	}
	var settledEvents, transfers int
	for _, log := range r.Logs {
		if ev, err := bs.UnpackSettledEvent(log); err == nil {
			settledEvents++
			if ev.Receiver != receiver || ev.Token != e.token || ev.Sender != stranger || ev.Amount.Int64() != 3_345 {
				t.Errorf("Settled %+v", ev)
			}
		}
		if _, err := token.UnpackTransferEvent(log); err == nil {
			transfers++
		}
	}
	if settledEvents != 1 || transfers != 1 {
		t.Fatalf("%d Settled events and %d transfers, want 1 and 1", settledEvents, transfers)
	}
	// Channel accounting is untouched: claimed tokens count against the channel's balance.
	wantState(t, e, a, channelState{balance: 5_000, totalClaimed: 1_000})

	// Nothing more is owed: settling again moves nothing and says nothing.
	r = e.mustSucceed(receiverKey, e.settlement, bs.PackSettle(receiver, e.token))
	if len(r.Logs) != 0 {
		t.Fatalf("empty settle logged %d events", len(r.Logs))
	}
	wantBalance(t, e, receiver, 3_345)

	// Later claims are paid by a later settle.
	e.claimSigned(e.row(payerKey, a, 1_500, 1_500))
	e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
	wantBalance(t, e, receiver, 3_845)
}
