package multicall3_test

import (
	"errors"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/contracts/multicall3"
)

// Account #0 of the well-known development mnemonic
// "test test test test test test test test test test test junk". Test use only.
var (
	senderKey, _ = crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	sender       = crypto.PubkeyToAddress(senderKey.PublicKey)
	mc           = multicall3.NewMulticall3()
)

type chain struct {
	t      *testing.T
	sim    *simulated.Backend
	client simulated.Client
	id     *big.Int
}

// newChain starts a chain with Multicall3's runtime code at the canonical address in genesis,
// copied from a deployment on another chain, the way the embedded dev chain gets it.
func newChain(t *testing.T) *chain {
	t.Helper()
	funded := types.GenesisAlloc{sender: {Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}}
	scratch := start(t, funded)
	at, tx, err := multicall3.Deploy(scratch.opts(), scratch.client)
	if err != nil {
		t.Fatal(err)
	}
	scratch.sim.Commit()
	if r, err := scratch.client.TransactionReceipt(t.Context(), tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deploy: %v", err)
	}
	code, err := scratch.client.CodeAt(t.Context(), at, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("code: %v", err)
	}
	funded[multicall3.Address] = types.Account{Code: code}
	return start(t, funded)
}

func start(t *testing.T, alloc types.GenesisAlloc) *chain {
	sim := simulated.NewBackend(alloc)
	t.Cleanup(func() { _ = sim.Close() })
	c := &chain{t: t, sim: sim, client: sim.Client()}
	id, err := c.client.ChainID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.id = id
	sim.Commit()
	return c
}

func (c *chain) opts() *bind.TransactOpts {
	opts := bind.NewKeyedTransactor(senderKey, c.id)
	opts.Context = c.t.Context()
	opts.GasLimit = 1_000_000
	return opts
}

func read[T any](c *chain, calldata []byte, unpack func([]byte) (T, error)) T {
	c.t.Helper()
	v, err := bind.Call(mc.Instance(c.client, multicall3.Address), &bind.CallOpts{Context: c.t.Context()}, calldata, unpack)
	if err != nil {
		c.t.Fatalf("call: %v", err)
	}
	return v
}

// revertReason is the Error(string) an eth_call of calldata reverts with.
func (c *chain) revertReason(calldata []byte, value *big.Int) string {
	c.t.Helper()
	_, err := c.client.CallContract(c.t.Context(), ethereum.CallMsg{From: sender, To: &multicall3.Address, Data: calldata, Value: value}, nil)
	var dataErr rpc.DataError
	if !errors.As(err, &dataErr) {
		c.t.Fatalf("call did not revert with data: %v", err)
	}
	hexData, _ := dataErr.ErrorData().(string)
	reason, err := abi.UnpackRevert(hexutil.MustDecode(hexData))
	if err != nil {
		c.t.Fatalf("revert %s: %v", hexData, err)
	}
	return reason
}

// The selectors viem and the x402 facilitator call, as the canonical Multicall3 defines them.
func TestInterface(t *testing.T) {
	want := map[string]string{
		"aggregate":                 "252dba42",
		"aggregate3":                "82ad56cb",
		"aggregate3Value":           "174dea71",
		"blockAndAggregate":         "c3077fa9",
		"getBasefee":                "3e64a696",
		"getBlockHash":              "ee82ac5e",
		"getBlockNumber":            "42cbb15c",
		"getChainId":                "3408e470",
		"getCurrentBlockCoinbase":   "a8b0574e",
		"getCurrentBlockDifficulty": "72425d9d",
		"getCurrentBlockGasLimit":   "86d516e8",
		"getCurrentBlockTimestamp":  "0f28c97d",
		"getEthBalance":             "4d2301cc",
		"getLastBlockHash":          "27e86d6e",
		"tryAggregate":              "bce38bd7",
		"tryBlockAndAggregate":      "399542e9",
	}
	methods := mc.GetABI().Methods
	if len(methods) != len(want) {
		t.Errorf("%d functions, want %d", len(methods), len(want))
	}
	for name, id := range want {
		if m, ok := methods[name]; !ok || hexutil.Encode(m.ID)[2:] != id {
			t.Errorf("%s: selector %x, want %s", name, m.ID, id)
		}
	}
}

func TestAggregates(t *testing.T) {
	c := newChain(t)
	self := multicall3.Address
	blockNumber := mc.PackGetBlockNumber()
	bogus := []byte{0xde, 0xad, 0xbe, 0xef} // no such function, and no fallback: reverts

	head, err := c.client.HeaderByNumber(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	number := head.Number.Int64()

	out := read(c, mc.PackAggregate([]multicall3.Multicall3Call{{Target: self, CallData: blockNumber}, {Target: self, CallData: mc.PackGetChainId()}}), mc.UnpackAggregate)
	if out.BlockNumber.Int64() != number || len(out.ReturnData) != 2 {
		t.Fatalf("aggregate %+v", out)
	}
	if got, _ := mc.UnpackGetChainId(out.ReturnData[1]); got.Cmp(c.id) != 0 {
		t.Fatalf("chain id through aggregate %s", got)
	}
	failing := []multicall3.Multicall3Call{{Target: self, CallData: blockNumber}, {Target: self, CallData: bogus}}
	if got := c.revertReason(mc.PackAggregate(failing), nil); got != "Multicall3: call failed" {
		t.Fatalf("aggregate with a failure reverted %q", got)
	}

	results := read(c, mc.PackTryAggregate(false, failing), mc.UnpackTryAggregate)
	if len(results) != 2 || !results[0].Success || results[1].Success {
		t.Fatalf("tryAggregate %+v", results)
	}
	if got, _ := mc.UnpackGetBlockNumber(results[0].ReturnData); got.Int64() != number {
		t.Fatalf("block number through tryAggregate %s", got)
	}
	if got := c.revertReason(mc.PackTryAggregate(true, failing), nil); got != "Multicall3: call failed" {
		t.Fatalf("tryAggregate(true) reverted %q", got)
	}
	tb := read(c, mc.PackTryBlockAndAggregate(false, failing), mc.UnpackTryBlockAndAggregate)
	if tb.BlockNumber.Int64() != number || len(tb.ReturnData) != 2 || tb.ReturnData[1].Success {
		t.Fatalf("tryBlockAndAggregate %+v", tb)
	}
	if got := c.revertReason(mc.PackBlockAndAggregate(failing), nil); got != "Multicall3: call failed" {
		t.Fatalf("blockAndAggregate reverted %q", got)
	}
	ba := read(c, mc.PackBlockAndAggregate(failing[:1]), mc.UnpackBlockAndAggregate)
	if ba.BlockNumber.Int64() != number || len(ba.ReturnData) != 1 || !ba.ReturnData[0].Success {
		t.Fatalf("blockAndAggregate %+v", ba)
	}

	calls3 := []multicall3.Multicall3Call3{
		{Target: self, AllowFailure: false, CallData: blockNumber},
		{Target: self, AllowFailure: true, CallData: bogus},
	}
	r3 := read(c, mc.PackAggregate3(calls3), mc.UnpackAggregate3)
	if len(r3) != 2 || !r3[0].Success || r3[1].Success {
		t.Fatalf("aggregate3 %+v", r3)
	}
	calls3[1].AllowFailure = false
	if got := c.revertReason(mc.PackAggregate3(calls3), nil); got != "Multicall3: call failed" {
		t.Fatalf("aggregate3 with a disallowed failure reverted %q", got)
	}
}

func TestAggregate3Value(t *testing.T) {
	c := newChain(t)
	payees := []common.Address{common.HexToAddress("0x00000000000000000000000000000000000a11ce"), common.HexToAddress("0x0000000000000000000000000000000000000b0b")}
	calls := []multicall3.Multicall3Call3Value{
		{Target: payees[0], Value: big.NewInt(7)},
		{Target: payees[1], Value: big.NewInt(5)},
	}
	// More than the calls carry: they all succeed, then the total does not match.
	if got := c.revertReason(mc.PackAggregate3Value(calls), big.NewInt(13)); got != "Multicall3: value mismatch" {
		t.Fatalf("value mismatch reverted %q", got)
	}
	opts := c.opts()
	opts.Value = big.NewInt(12)
	tx, err := bind.Transact(mc.Instance(c.client, multicall3.Address), opts, mc.PackAggregate3Value(calls))
	if err != nil {
		t.Fatal(err)
	}
	c.sim.Commit()
	if r, err := c.client.TransactionReceipt(t.Context(), tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("aggregate3Value: %v", err)
	}
	for i, want := range []int64{7, 5} {
		if got, err := c.client.BalanceAt(t.Context(), payees[i], nil); err != nil || got.Int64() != want {
			t.Fatalf("payee %d holds %v, want %d (%v)", i, got, want, err)
		}
	}
}

func TestGetters(t *testing.T) {
	c := newChain(t)
	c.sim.Commit()
	head, err := c.client.HeaderByNumber(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := c.client.HeaderByNumber(t.Context(), new(big.Int).Sub(head.Number, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	balance, err := c.client.BalanceAt(t.Context(), sender, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"getBlockNumber", read(c, mc.PackGetBlockNumber(), mc.UnpackGetBlockNumber).Uint64(), head.Number.Uint64()},
		{"getCurrentBlockTimestamp", read(c, mc.PackGetCurrentBlockTimestamp(), mc.UnpackGetCurrentBlockTimestamp).Uint64(), head.Time},
		{"getCurrentBlockGasLimit", read(c, mc.PackGetCurrentBlockGasLimit(), mc.UnpackGetCurrentBlockGasLimit).Uint64(), head.GasLimit},
		{"getCurrentBlockCoinbase", read(c, mc.PackGetCurrentBlockCoinbase(), mc.UnpackGetCurrentBlockCoinbase), head.Coinbase},
		{"getCurrentBlockDifficulty", common.BigToHash(read(c, mc.PackGetCurrentBlockDifficulty(), mc.UnpackGetCurrentBlockDifficulty)), head.MixDigest},
		{"getChainId", read(c, mc.PackGetChainId(), mc.UnpackGetChainId).String(), c.id.String()},
		{"getEthBalance", read(c, mc.PackGetEthBalance(sender), mc.UnpackGetEthBalance).String(), balance.String()},
		{"getLastBlockHash", common.Hash(read(c, mc.PackGetLastBlockHash(), mc.UnpackGetLastBlockHash)), parent.Hash()},
		{"getBlockHash", common.Hash(read(c, mc.PackGetBlockHash(parent.Number), mc.UnpackGetBlockHash)), parent.Hash()},
	}
	// eth_call reports a zero base fee unless the call pays a gas price.
	out, err := c.client.CallContract(t.Context(), ethereum.CallMsg{From: sender, To: &multicall3.Address, GasPrice: head.BaseFee, Data: mc.PackGetBasefee()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fee, err := mc.UnpackGetBasefee(out); err != nil || fee.Cmp(head.BaseFee) != 0 {
		t.Errorf("getBasefee = %v, want %s (%v)", fee, head.BaseFee, err)
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if !slices.Equal(multicall3.CreationCode(), common.FromHex(multicall3.Multicall3MetaData.Bin)) {
		t.Error("CreationCode differs from the generated metadata")
	}
}
