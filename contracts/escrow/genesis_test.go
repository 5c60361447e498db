package escrow_test

import (
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/contracts/testusdc"
)

// runtimeCode deploys initCode on a scratch chain and returns the code it leaves behind.
func runtimeCode(t *testing.T, initCode []byte) []byte {
	t.Helper()
	e := newChain(t, nil)
	at := e.deploy(bind.DeployContract(e.opts(deployerKey), initCode, e.client, nil))
	code, err := e.client.CodeAt(t.Context(), at, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("runtime code: %d bytes, %v", len(code), err)
	}
	return code
}

// TestCanonicalAddressesInGenesis places the runtime code, produced by constructors that ran at
// other addresses, at the canonical addresses of a new chain's genesis (as the embedded dev
// chain does) and runs a deposit, claims and a settlement there. Nothing may depend on the
// address or chain the constructors saw.
func TestCanonicalAddressesInGenesis(t *testing.T) {
	settlementCode := runtimeCode(t, escrow.BatchSettlementCreationCode())
	// The collector's immutable must already name the canonical settlement address.
	collectorCode := runtimeCode(t, escrow.ERC3009DepositCollectorInitCode(escrow.BatchSettlementAddress))
	multicallCode := runtimeCode(t, multicall3.CreationCode())

	e := newChain(t, types.GenesisAlloc{
		escrow.BatchSettlementAddress:         {Code: settlementCode},
		escrow.ERC3009DepositCollectorAddress: {Code: collectorCode},
		escrow.Multicall3Address:              {Code: multicallCode},
	})
	e.settlement, e.collector = escrow.BatchSettlementAddress, escrow.ERC3009DepositCollectorAddress
	e.token = e.deploy(testusdc.Deploy(e.opts(deployerKey), e.client, deployer))

	d := call(e, e.settlement, bs.PackEip712Domain(), bs.UnpackEip712Domain)
	if d.VerifyingContract != escrow.BatchSettlementAddress || d.ChainId.Cmp(e.chainID) != 0 {
		t.Fatalf("eip712Domain %+v", d)
	}
	if got := call(e, e.collector, coll.PackX402BatchSettlement(), coll.UnpackX402BatchSettlement); got != escrow.BatchSettlementAddress {
		t.Fatalf("collector serves %s", got)
	}

	a, b := e.config(payerKey, 1), e.config(payer2Key, 1)
	// The id is bound to the canonical address: what a stock client computes offline.
	id := call(e, e.settlement, bs.PackGetChannelId(a), bs.UnpackGetChannelId)
	if want := channelID(settlementDomain(e.chainID, escrow.BatchSettlementAddress), a); id != want {
		t.Fatalf("getChannelId %x, want %s", id, want)
	}

	e.deposit(payerKey, a, 8_000)
	e.deposit(payer2Key, b, 2_000)
	e.claimSigned(e.row(payerKey, a, 3_000, 3_000), e.row(payer2Key, b, 1_500, 1_500))
	e.mustSucceed(relayerKey, e.settlement, bs.PackSettle(receiver, e.token))
	wantBalance(t, e, receiver, 4_500)
	wantBalance(t, e, e.settlement, 5_500)
	wantState(t, e, a, channelState{balance: 8_000, totalClaimed: 3_000})

	// A signed refund works there too, and the facilitator's way of reading channel state,
	// Multicall3.tryAggregate, sees the result.
	e.mustSucceed(relayerKey, e.settlement, e.refundCall(receiverAuthKey, a, 5_000, 0))
	wantBalance(t, e, payer, 5_000)
	mc := multicall3.NewMulticall3()
	results := call(e, multicall3.Address, mc.PackTryAggregate(false, []multicall3.Multicall3Call{
		{Target: e.settlement, CallData: bs.PackChannels(id)},
		{Target: e.settlement, CallData: bs.PackRefundNonce(id)},
	}), mc.UnpackTryAggregate)
	ch, err := bs.UnpackChannels(results[0].ReturnData)
	if err != nil || !results[0].Success || ch.Balance.Int64() != 3_000 || ch.TotalClaimed.Int64() != 3_000 {
		t.Fatalf("channels via multicall: %+v, %v", ch, err)
	}
	if nonce, err := bs.UnpackRefundNonce(results[1].ReturnData); err != nil || nonce.Int64() != 1 {
		t.Fatalf("refundNonce via multicall: %v, %v", nonce, err)
	}
}

// TestCreationCodeHelpers checks the hand-written helpers against the generated metadata.
func TestCreationCodeHelpers(t *testing.T) {
	init := escrow.ERC3009DepositCollectorInitCode(escrow.BatchSettlementAddress)
	creation := escrow.ERC3009DepositCollectorCreationCode()
	if len(init) != len(creation)+32 || common.BytesToAddress(init[len(creation):]) != escrow.BatchSettlementAddress {
		t.Fatal("init code is not creation code followed by the settlement address")
	}
	if len(escrow.BatchSettlementCreationCode()) == 0 || len(multicall3.CreationCode()) == 0 {
		t.Fatal("empty creation code")
	}
}
