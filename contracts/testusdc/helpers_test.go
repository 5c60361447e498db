package testusdc_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
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

	"github.com/payper/payper/contracts/testusdc"
)

// Accounts 0, 1, 3 and 4 of the well-known development mnemonic
// "test test test test test test test test test test test junk". Test use only.
var (
	minterKey  = mustKey("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	payerKey   = mustKey("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	payeeKey   = mustKey("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6")
	relayerKey = mustKey("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a")

	minter  = crypto.PubkeyToAddress(minterKey.PublicKey)
	payer   = crypto.PubkeyToAddress(payerKey.PublicKey)
	payee   = crypto.PubkeyToAddress(payeeKey.PublicKey)
	relayer = crypto.PubkeyToAddress(relayerKey.PublicKey)
)

func mustKey(hex string) *ecdsa.PrivateKey {
	key, err := crypto.HexToECDSA(hex)
	if err != nil {
		panic(err)
	}
	return key
}

// chain is a simulated chain with a deployed TestUSDC whose minter is account 0.
type chain struct {
	t        *testing.T
	sim      *simulated.Backend
	client   simulated.Client
	chainID  *big.Int
	token    *testusdc.TestUSDC
	address  common.Address
	instance *bind.BoundContract
}

func newChain(t *testing.T, extra types.GenesisAlloc) *chain {
	t.Helper()
	alloc := types.GenesisAlloc{}
	for _, a := range []common.Address{minter, payer, payee, relayer} {
		alloc[a] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	}
	for a, acc := range extra {
		alloc[a] = acc
	}
	sim := simulated.NewBackend(alloc)
	t.Cleanup(func() { _ = sim.Close() })
	c := &chain{t: t, sim: sim, client: sim.Client(), token: testusdc.NewTestUSDC()}
	chainID, err := c.client.ChainID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.chainID = chainID
	return c
}

// deploy deploys the token with account 0 as minter and binds c to it.
func (c *chain) deploy() {
	c.t.Helper()
	addr, tx, err := testusdc.Deploy(c.opts(minterKey), c.client, minter)
	if err != nil {
		c.t.Fatalf("deploy: %v", err)
	}
	c.sim.Commit()
	if r := c.receipt(tx); r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatal("deployment failed")
	}
	c.bind(addr)
}

func (c *chain) bind(addr common.Address) {
	c.address = addr
	c.instance = c.token.Instance(c.client, addr)
}

func (c *chain) opts(key *ecdsa.PrivateKey) *bind.TransactOpts {
	opts := bind.NewKeyedTransactor(key, c.chainID)
	opts.Context = c.t.Context()
	// A fixed limit skips gas estimation, so transactions that revert are mined too.
	opts.GasLimit = 3_000_000
	return opts
}

func (c *chain) receipt(tx *types.Transaction) *types.Receipt {
	c.t.Helper()
	r, err := c.client.TransactionReceipt(c.t.Context(), tx.Hash())
	if err != nil {
		c.t.Fatalf("receipt: %v", err)
	}
	return r
}

// send mines one transaction from key carrying calldata to the token.
func (c *chain) send(key *ecdsa.PrivateKey, calldata []byte) *types.Receipt {
	c.t.Helper()
	tx, err := bind.Transact(c.instance, c.opts(key), calldata)
	if err != nil {
		c.t.Fatalf("send: %v", err)
	}
	c.sim.Commit()
	return c.receipt(tx)
}

func (c *chain) mustSucceed(key *ecdsa.PrivateKey, calldata []byte) *types.Receipt {
	c.t.Helper()
	r := c.send(key, calldata)
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("transaction reverted: %q", c.revertReason(key, calldata))
	}
	return r
}

// mustRevert mines the transaction, expects it to fail, then reads the reason with eth_call.
// The failed transaction changed no token state and the latest block carries the timestamp it
// ran at, so the call reproduces the failure exactly.
func (c *chain) mustRevert(key *ecdsa.PrivateKey, calldata []byte, reason string) {
	c.t.Helper()
	if r := c.send(key, calldata); r.Status != types.ReceiptStatusFailed {
		c.t.Fatalf("transaction succeeded, want revert %q", reason)
	}
	if got := c.revertReason(key, calldata); got != reason {
		c.t.Fatalf("revert reason %q, want %q", got, reason)
	}
}

// revertData is what an eth_call of calldata from key's account reverts with (nil if it succeeds).
func (c *chain) revertData(key *ecdsa.PrivateKey, calldata []byte) []byte {
	c.t.Helper()
	from := crypto.PubkeyToAddress(key.PublicKey)
	_, err := c.client.CallContract(c.t.Context(), ethereum.CallMsg{From: from, To: &c.address, Data: calldata}, nil)
	if err == nil {
		return nil
	}
	var dataErr rpc.DataError
	if !errors.As(err, &dataErr) {
		c.t.Fatalf("call failed without revert data: %v", err)
	}
	hexData, _ := dataErr.ErrorData().(string)
	data, err := hexutil.Decode(hexData)
	if err != nil {
		c.t.Fatalf("revert data %q: %v", hexData, err)
	}
	return data
}

// revertReason decodes an Error(string) revert; "" when the call succeeds.
func (c *chain) revertReason(key *ecdsa.PrivateKey, calldata []byte) string {
	c.t.Helper()
	data := c.revertData(key, calldata)
	if data == nil {
		return ""
	}
	reason, err := abi.UnpackRevert(data)
	if err != nil {
		c.t.Fatalf("revert data %x is not Error(string): %v", data, err)
	}
	return reason
}

// read calls a view function and unpacks its result.
func read[T any](c *chain, calldata []byte, unpack func([]byte) (T, error)) T {
	c.t.Helper()
	v, err := bind.Call(c.instance, &bind.CallOpts{Context: c.t.Context()}, calldata, unpack)
	if err != nil {
		c.t.Fatalf("call: %v", err)
	}
	return v
}

func (c *chain) balanceOf(a common.Address) *big.Int {
	return read(c, c.token.PackBalanceOf(a), c.token.UnpackBalanceOf)
}

func (c *chain) used(authorizer common.Address, nonce [32]byte) bool {
	return read(c, c.token.PackAuthorizationState(authorizer, nonce), c.token.UnpackAuthorizationState)
}

func (c *chain) mint(to common.Address, amount *big.Int) {
	c.t.Helper()
	c.mustSucceed(minterKey, c.token.PackMint(to, amount))
}

// now is the latest block's timestamp.
func (c *chain) now() uint64 {
	c.t.Helper()
	h, err := c.client.HeaderByNumber(c.t.Context(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return h.Time
}

func (c *chain) domain() common.Hash {
	return domainSeparator(c.chainID, c.address)
}

func wantBalance(t *testing.T, c *chain, a common.Address, want *big.Int) {
	t.Helper()
	if got := c.balanceOf(a); got.Cmp(want) != 0 {
		t.Fatalf("balance of %s = %s, want %s", a, got, want)
	}
}

// usdc converts whole and hundredths of a dollar into atomic units (6 decimals).
func usdc(cents int64) *big.Int {
	return big.NewInt(cents * 10_000)
}
