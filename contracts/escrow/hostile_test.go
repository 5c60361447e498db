package escrow_test

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/contracts/internal/testcontracts"
)

var (
	hostileToken = testcontracts.NewReentrantToken()
	pull         = testcontracts.NewPullCollector()
	wallet       = testcontracts.NewSmartWallet()
)

// hostileEnv is env plus a ReentrantToken and a PullCollector the payer has approved.
type hostileEnv struct {
	*env
	tok, puller common.Address
}

func newHostileEnv(t *testing.T) *hostileEnv {
	e := newEnv(t)
	h := &hostileEnv{env: e}
	h.tok = e.deploy(bind.DeployContract(e.opts(deployerKey), common.FromHex(testcontracts.ReentrantTokenMetaData.Bin), e.client, nil))
	h.puller = e.deploy(bind.DeployContract(e.opts(deployerKey), common.FromHex(testcontracts.PullCollectorMetaData.Bin), e.client, nil))
	e.mustSucceed(deployerKey, h.tok, hostileToken.PackMint(payer, big.NewInt(1_000_000)))
	e.mustSucceed(payerKey, h.tok, hostileToken.PackApprove(h.puller, big.NewInt(1_000_000)))
	return h
}

func (h *hostileEnv) config() escrow.ChannelConfig {
	c := h.env.config(payerKey, 1)
	c.Token = h.tok
	return c
}

func (h *hostileEnv) tokenBalance(a common.Address) int64 {
	return call(h.env, h.tok, hostileToken.PackBalanceOf(a), hostileToken.UnpackBalanceOf).Int64()
}

// wantHookRefused checks that the armed callback ran and bounced off the reentrancy guard.
func (h *hostileEnv) wantHookRefused(t *testing.T) {
	t.Helper()
	ran := call(h.env, h.tok, hostileToken.PackHookRan(), hostileToken.UnpackHookRan)
	ok := call(h.env, h.tok, hostileToken.PackHookSucceeded(), hostileToken.UnpackHookSucceeded)
	result := call(h.env, h.tok, hostileToken.PackHookResult(), hostileToken.UnpackHookResult)
	guard := escrow.BatchSettlementReentrancyGuardReentrantCallErrorID()
	if !ran || ok || !bytes.HasPrefix(result, guard[:4]) {
		t.Fatalf("callback ran %v, succeeded %v, returned %s; want refused by the reentrancy guard", ran, ok, describeRevert(result))
	}
}

// A token that calls settle again from inside the payout transfer must not get paid twice.
func TestReentrantSettle(t *testing.T) {
	h := newHostileEnv(t)
	c := h.config()
	h.mustSucceed(relayerKey, h.settlement, bs.PackDeposit(c, big.NewInt(5_000), h.puller, nil))
	h.mustSucceed(receiverKey, h.settlement, bs.PackClaim([]escrow.VoucherClaim{h.row(payerKey, c, 1_000, 1_000)}))

	h.mustSucceed(strangerKey, h.tok, hostileToken.PackArm(h.settlement, bs.PackSettle(receiver, h.tok)))
	h.mustSucceed(strangerKey, h.settlement, bs.PackSettle(receiver, h.tok))
	h.wantHookRefused(t)
	if got := h.tokenBalance(receiver); got != 1_000 {
		t.Fatalf("receiver got %d, want 1000", got)
	}
	if got := h.tokenBalance(h.settlement); got != 4_000 {
		t.Fatalf("settlement holds %d, want 4000", got)
	}
}

// A token that re-enters during a refund or a withdrawal payout is refused as well.
func TestReentrantPayouts(t *testing.T) {
	h := newHostileEnv(t)
	c := h.config()
	h.mustSucceed(relayerKey, h.settlement, bs.PackDeposit(c, big.NewInt(5_000), h.puller, nil))

	h.mustSucceed(strangerKey, h.tok, hostileToken.PackArm(h.settlement, bs.PackRefund(c, big.NewInt(1_000))))
	h.mustSucceed(receiverKey, h.settlement, bs.PackRefund(c, big.NewInt(1_000)))
	h.wantHookRefused(t)
	wantState(t, h.env, c, channelState{balance: 4_000, refundNonce: 1})

	h.mustSucceed(payerKey, h.settlement, bs.PackInitiateWithdraw(c, big.NewInt(4_000)))
	h.advance(uint64(escrow.MinWithdrawDelay))
	h.mustSucceed(strangerKey, h.tok, hostileToken.PackArm(h.settlement, bs.PackFinalizeWithdraw(c)))
	h.mustSucceed(payerKey, h.settlement, bs.PackFinalizeWithdraw(c))
	h.wantHookRefused(t)
	wantState(t, h.env, c, channelState{refundNonce: 1})
	if got := h.tokenBalance(payer); got != 1_000_000 {
		t.Fatalf("payer holds %d, want all 1000000 back", got)
	}
}

// A collector that calls deposit again before delivering cannot get one payment counted twice,
// and one that delivers less than promised fails the deposit.
func TestHostileCollector(t *testing.T) {
	h := newHostileEnv(t)
	c := h.config()

	inner := bs.PackDeposit(c, big.NewInt(700), h.puller, nil)
	h.mustSucceed(strangerKey, h.puller, pull.PackSetReentry(inner))
	h.mustSucceed(relayerKey, h.settlement, bs.PackDeposit(c, big.NewInt(700), h.puller, nil))
	ran := call(h.env, h.puller, pull.PackReentryRan(), pull.UnpackReentryRan)
	ok := call(h.env, h.puller, pull.PackReentrySucceeded(), pull.UnpackReentrySucceeded)
	result := call(h.env, h.puller, pull.PackReentryResult(), pull.UnpackReentryResult)
	guard := escrow.BatchSettlementReentrancyGuardReentrantCallErrorID()
	if !ran || ok || !bytes.HasPrefix(result, guard[:4]) {
		t.Fatalf("nested deposit ran %v, succeeded %v, returned %s", ran, ok, describeRevert(result))
	}
	wantState(t, h.env, c, channelState{balance: 700})
	if got := h.tokenBalance(h.settlement); got != 700 {
		t.Fatalf("settlement holds %d, want 700", got)
	}

	h.mustSucceed(strangerKey, h.puller, pull.PackSetShortfall(big.NewInt(1)))
	h.mustRevert(relayerKey, h.settlement, bs.PackDeposit(c, big.NewInt(300), h.puller, nil), escrow.BatchSettlementDepositCollectionFailedErrorID())
	wantState(t, h.env, c, channelState{balance: 700})
}

// A smart-contract payer without a payer authorizer: its deposits and vouchers are checked
// through ERC-1271, and it withdraws by calling the contract itself.
func TestSmartWalletPayer(t *testing.T) {
	e := newEnv(t)
	w := e.deploy(bind.DeployContract(e.opts(deployerKey), common.FromHex(testcontracts.SmartWalletMetaData.Bin), e.client, wallet.PackConstructor(payer)))
	e.mint(w, 10_000)
	c := e.config(payerKey, 1)
	c.Payer, c.PayerAuthorizer = w, common.Address{}

	e.mustSucceed(relayerKey, e.settlement, e.depositCallFrom(w, payerKey, c, 6_000))
	wantState(t, e, c, channelState{balance: 6_000})
	wantBalance(t, e, w, 4_000)

	e.mustRevert(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(strangerKey, c, 1_000, 1_000)}),
		escrow.BatchSettlementInvalidSignatureErrorID())
	e.claimSigned(e.row(payerKey, c, 1_000, 1_000))
	wantState(t, e, c, channelState{balance: 6_000, totalClaimed: 1_000})

	// Only the wallet itself (not its owner key) is the payer side.
	e.mustRevert(payerKey, e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(5_000)), escrow.BatchSettlementInvalidChannelErrorID())
	e.mustSucceed(payerKey, w, wallet.PackExecute(e.settlement, bs.PackInitiateWithdraw(c, big.NewInt(5_000))))
	e.advance(uint64(escrow.MinWithdrawDelay))
	e.mustSucceed(payerKey, w, wallet.PackExecute(e.settlement, bs.PackFinalizeWithdraw(c)))
	wantBalance(t, e, w, 9_000)
	wantState(t, e, c, channelState{balance: 1_000, totalClaimed: 1_000})
}

// An ordinary account payer without a payer authorizer signs its vouchers itself; low-s only.
func TestPayerSignsWithoutAuthorizer(t *testing.T) {
	e := newEnv(t)
	c := e.config(payerKey, 1)
	c.PayerAuthorizer = common.Address{}
	e.deposit(payerKey, c, 1_000)

	twin := e.row(payerKey, c, 500, 500)
	twin.Signature = highSTwin(twin.Signature)
	e.mustRevert(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{twin}), escrow.BatchSettlementInvalidSignatureErrorID())
	e.mustRevert(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(sessionKey, c, 500, 500)}), escrow.BatchSettlementInvalidSignatureErrorID())
	e.mustSucceed(receiverKey, e.settlement, bs.PackClaim([]escrow.VoucherClaim{e.row(payerKey, c, 500, 500)}))
	wantState(t, e, c, channelState{balance: 1_000, totalClaimed: 500})
}
