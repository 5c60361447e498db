package escrow_test

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/contracts/testusdc"
)

// Accounts of the well-known development mnemonic
// "test test test test test test test test test test test junk". Test use only.
var (
	deployerKey     = mustKey("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80") // #0, token minter
	payerKey        = mustKey("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d") // #1
	payer2Key       = mustKey("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a") // #2
	receiverKey     = mustKey("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6") // #3
	relayerKey      = mustKey("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a") // #4
	sessionKey      = mustKey("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba") // #5, a payer authorizer
	strangerKey     = mustKey("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e") // #6
	otherAuthKey    = mustKey("4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356") // #7
	receiverAuthKey = mustKey("dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97") // #8

	deployer     = addr(deployerKey)
	payer        = addr(payerKey)
	payer2       = addr(payer2Key)
	receiver     = addr(receiverKey)
	relayer      = addr(relayerKey)
	session      = addr(sessionKey)
	stranger     = addr(strangerKey)
	otherAuth    = addr(otherAuthKey)
	receiverAuth = addr(receiverAuthKey)
)

func mustKey(hex string) *ecdsa.PrivateKey {
	key, err := crypto.HexToECDSA(hex)
	if err != nil {
		panic(err)
	}
	return key
}

func addr(key *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(key.PublicKey) }

var (
	bs    = escrow.NewBatchSettlement()
	coll  = escrow.NewERC3009DepositCollector()
	token = testusdc.NewTestUSDC()
)

// env is a simulated chain with TestUSDC, a BatchSettlement and its ERC-3009 collector.
type env struct {
	t          *testing.T
	sim        *simulated.Backend
	client     simulated.Client
	chainID    *big.Int
	settlement common.Address
	collector  common.Address
	token      common.Address
	authSalt   int64 // makes every ERC-3009 authorization nonce unique
}

// newEnv deploys the contracts normally (constructors run at the addresses the code lives at),
// on a chain with the developer-mode forks, like the embedded dev chain.
func newEnv(t *testing.T, options ...func(*node.Config, *ethconfig.Config)) *env {
	t.Helper()
	e := newChain(t, nil, options...)
	e.token = e.deploy(testusdc.Deploy(e.opts(deployerKey), e.client, deployer))
	e.settlement = e.deploy(escrow.DeployBatchSettlement(e.opts(deployerKey), e.client))
	e.collector = e.deploy(escrow.DeployERC3009DepositCollector(e.opts(deployerKey), e.client, e.settlement))
	return e
}

// osakaRules runs the chain on the forks public chains run (up to Osaka), without the unreleased
// fork go-ethereum's developer mode also enables, whose state-gas metering (EIP-8037/8038)
// makes gas figures incomparable with public chains.
func osakaRules(_ *node.Config, c *ethconfig.Config) {
	cfg := *c.Genesis.Config
	cfg.BogotaTime = nil
	c.Genesis.Config = &cfg
}

func newChain(t *testing.T, extra types.GenesisAlloc, options ...func(*node.Config, *ethconfig.Config)) *env {
	t.Helper()
	alloc := types.GenesisAlloc{}
	for _, k := range []*ecdsa.PrivateKey{deployerKey, payerKey, payer2Key, receiverKey, relayerKey, sessionKey, strangerKey, otherAuthKey, receiverAuthKey} {
		alloc[addr(k)] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}
	}
	for a, acc := range extra {
		alloc[a] = acc
	}
	sim := simulated.NewBackend(alloc, append(options, simulated.WithBlockGasLimit(60_000_000))...)
	t.Cleanup(func() { _ = sim.Close() })
	e := &env{t: t, sim: sim, client: sim.Client()}
	chainID, err := e.client.ChainID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.chainID = chainID
	sim.Commit() // leave the genesis timestamp 0 behind
	return e
}

func (e *env) deploy(address common.Address, tx *types.Transaction, err error) common.Address {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("deploy: %v", err)
	}
	e.sim.Commit()
	if r := e.receipt(tx); r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatal("deployment failed")
	}
	return address
}

func (e *env) opts(key *ecdsa.PrivateKey) *bind.TransactOpts {
	opts := bind.NewKeyedTransactor(key, e.chainID)
	opts.Context = e.t.Context()
	// A fixed limit skips gas estimation, so transactions that revert are mined too.
	opts.GasLimit = 5_000_000
	return opts
}

func (e *env) receipt(tx *types.Transaction) *types.Receipt {
	e.t.Helper()
	r, err := e.client.TransactionReceipt(e.t.Context(), tx.Hash())
	if err != nil {
		e.t.Fatalf("receipt: %v", err)
	}
	return r
}

// send mines one transaction from key to `to` carrying calldata.
func (e *env) send(key *ecdsa.PrivateKey, to common.Address, calldata []byte) *types.Receipt {
	e.t.Helper()
	tx, err := bind.Transact(bs.Instance(e.client, to), e.opts(key), calldata)
	if err != nil {
		e.t.Fatalf("send: %v", err)
	}
	e.sim.Commit()
	return e.receipt(tx)
}

func (e *env) mustSucceed(key *ecdsa.PrivateKey, to common.Address, calldata []byte) *types.Receipt {
	e.t.Helper()
	r := e.send(key, to, calldata)
	if r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatalf("transaction reverted: %s", describeRevert(e.revertData(key, to, calldata)))
	}
	return r
}

// mustRevert mines the transaction, expects it to fail, and checks the custom error it raised
// (read back with eth_call on the state the failed transaction left unchanged).
func (e *env) mustRevert(key *ecdsa.PrivateKey, to common.Address, calldata []byte, want common.Hash) {
	e.t.Helper()
	if r := e.send(key, to, calldata); r.Status != types.ReceiptStatusFailed {
		e.t.Fatalf("transaction succeeded, want revert %s", errorName(want))
	}
	got := e.revertData(key, to, calldata)
	if len(got) < 4 || !bytes.Equal(got[:4], want[:4]) {
		e.t.Fatalf("reverted with %s, want %s", describeRevert(got), errorName(want))
	}
}

// revertData is what an eth_call of calldata from key's account reverts with (nil on success).
func (e *env) revertData(key *ecdsa.PrivateKey, to common.Address, calldata []byte) []byte {
	e.t.Helper()
	msg := ethereum.CallMsg{From: addr(key), To: &to, Data: calldata, Gas: 5_000_000}
	_, err := e.client.CallContract(e.t.Context(), msg, nil)
	if err == nil {
		return nil
	}
	var dataErr rpc.DataError
	if !errors.As(err, &dataErr) {
		e.t.Fatalf("call failed without revert data: %v", err)
	}
	hexData, _ := dataErr.ErrorData().(string)
	data, err := hexutil.Decode(hexData)
	if err != nil {
		e.t.Fatalf("revert data %q: %v", hexData, err)
	}
	return data
}

// describeRevert names a revert for failure messages.
func describeRevert(data []byte) string {
	if data == nil {
		return "no revert"
	}
	for _, unpack := range []func([]byte) (any, error){bs.UnpackError, coll.UnpackError} {
		if v, err := unpack(data); err == nil {
			return fmt.Sprintf("%T%+v", v, v)
		}
	}
	if reason, err := abi.UnpackRevert(data); err == nil {
		return "Error(" + reason + ")"
	}
	return hexutil.Encode(data)
}

// errorName finds the name of a BatchSettlement or collector error by its id.
func errorName(id common.Hash) string {
	for _, a := range []abi.ABI{bs.GetABI(), coll.GetABI()} {
		for name, e := range a.Errors {
			if e.ID == id {
				return name
			}
		}
	}
	return id.Hex()
}

// call runs a view function and unpacks its result.
func call[T any](e *env, to common.Address, calldata []byte, unpack func([]byte) (T, error)) T {
	e.t.Helper()
	v, err := bind.Call(bs.Instance(e.client, to), &bind.CallOpts{Context: e.t.Context()}, calldata, unpack)
	if err != nil {
		e.t.Fatalf("call: %v", err)
	}
	return v
}

func (e *env) balanceOf(a common.Address) *big.Int {
	return call(e, e.token, token.PackBalanceOf(a), token.UnpackBalanceOf)
}

func (e *env) mint(to common.Address, amount int64) {
	e.t.Helper()
	e.mustSucceed(deployerKey, e.token, token.PackMint(to, big.NewInt(amount)))
}

// now is the latest block's timestamp.
func (e *env) now() uint64 {
	e.t.Helper()
	h, err := e.client.HeaderByNumber(e.t.Context(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Time
}

// advance mines an empty block `seconds` after the latest one.
func (e *env) advance(seconds uint64) {
	e.t.Helper()
	// AdjustTime refuses to run while the transaction pool still lists transactions, and the
	// pool forgets mined ones in the background. Commit waits for the pool to catch up, so an
	// empty block first makes the adjustment reliable.
	e.sim.Commit()
	if err := e.sim.AdjustTime(time.Duration(seconds) * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// channelState is what the contract stores for a channel.
type channelState struct {
	balance, totalClaimed int64
	withdrawAmount        int64
	withdrawAt            uint64
	refundNonce           int64
}

func (e *env) state(c escrow.ChannelConfig) channelState {
	e.t.Helper()
	id := e.channelID(c)
	ch := call(e, e.settlement, bs.PackChannels(id), bs.UnpackChannels)
	w := call(e, e.settlement, bs.PackPendingWithdrawals(id), bs.UnpackPendingWithdrawals)
	n := call(e, e.settlement, bs.PackRefundNonce(id), bs.UnpackRefundNonce)
	return channelState{
		balance: ch.Balance.Int64(), totalClaimed: ch.TotalClaimed.Int64(),
		withdrawAmount: w.Amount.Int64(), withdrawAt: w.InitiatedAt.Uint64(), refundNonce: n.Int64(),
	}
}

func (e *env) receiverTotals(r, tok common.Address) (claimed, settled int64) {
	out := call(e, e.settlement, bs.PackReceivers(r, tok), bs.UnpackReceivers)
	return out.TotalClaimed.Int64(), out.TotalSettled.Int64()
}

func wantState(t *testing.T, e *env, c escrow.ChannelConfig, want channelState) {
	t.Helper()
	if got := e.state(c); got != want {
		t.Fatalf("channel state %+v, want %+v", got, want)
	}
}

func wantBalance(t *testing.T, e *env, a common.Address, want int64) {
	t.Helper()
	if got := e.balanceOf(a); got.Cmp(big.NewInt(want)) != 0 {
		t.Fatalf("token balance of %s = %s, want %d", a, got, want)
	}
}

// config is a channel from payerKey's account to receiver, authorized by receiverAuth, with the
// payer's own key signing vouchers (as the stock x402 client does).
func (e *env) config(payerKey *ecdsa.PrivateKey, salt byte) escrow.ChannelConfig {
	p := addr(payerKey)
	return escrow.ChannelConfig{
		Payer: p, PayerAuthorizer: p, Receiver: receiver, ReceiverAuthorizer: receiverAuth,
		Token: e.token, WithdrawDelay: big.NewInt(escrow.MinWithdrawDelay), Salt: [32]byte{31: salt},
	}
}

func sameConfig(a, b escrow.ChannelConfig) bool {
	return a.Payer == b.Payer && a.PayerAuthorizer == b.PayerAuthorizer && a.Receiver == b.Receiver &&
		a.ReceiverAuthorizer == b.ReceiverAuthorizer && a.Token == b.Token && a.Salt == b.Salt &&
		a.WithdrawDelay.Cmp(b.WithdrawDelay) == 0
}

func (e *env) domain() common.Hash { return settlementDomain(e.chainID, e.settlement) }

func (e *env) channelID(c escrow.ChannelConfig) common.Hash { return channelID(e.domain(), c) }

// depositCall builds deposit calldata carrying an EIP-3009 ReceiveWithAuthorization that key
// signs for the collector, with the nonce bound to the channel the way the collector expects.
func (e *env) depositCall(key *ecdsa.PrivateKey, c escrow.ChannelConfig, amount int64) []byte {
	e.t.Helper()
	return e.depositCallFrom(addr(key), key, c, amount)
}

// depositCallFrom is depositCall for tokens held by from, whose authorization key signs (from
// may be an ERC-1271 wallet).
func (e *env) depositCallFrom(from common.Address, key *ecdsa.PrivateKey, c escrow.ChannelConfig, amount int64) []byte {
	e.t.Helper()
	e.authSalt++
	salt := big.NewInt(e.authSalt)
	validBefore := big.NewInt(int64(e.now()) + 3600)
	nonce := depositNonce(e.channelID(c), salt)
	digest := receiveDigest(tokenDomain(e.chainID, e.token), from, e.collector, big.NewInt(amount), big.NewInt(0), validBefore, nonce)
	data := collectorData(big.NewInt(0), validBefore, salt, sign(e.t, key, digest))
	return bs.PackDeposit(c, big.NewInt(amount), e.collector, data)
}

func collectorData(validAfter, validBefore, salt *big.Int, sig []byte) []byte {
	uint256, _ := abi.NewType("uint256", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	args := abi.Arguments{{Type: uint256}, {Type: uint256}, {Type: uint256}, {Type: bytesT}}
	out, err := args.Pack(validAfter, validBefore, salt, sig)
	if err != nil {
		panic(err)
	}
	return out
}

// deposit funds c with amount, minting the tokens to the payer first; relayer submits.
func (e *env) deposit(key *ecdsa.PrivateKey, c escrow.ChannelConfig, amount int64) *types.Receipt {
	e.t.Helper()
	e.mint(addr(key), amount)
	return e.mustSucceed(relayerKey, e.settlement, e.depositCall(key, c, amount))
}

// row is a claim row for c with a voucher of ceiling max signed by key.
func (e *env) row(key *ecdsa.PrivateKey, c escrow.ChannelConfig, max, total int64) escrow.VoucherClaim {
	e.t.Helper()
	id := e.channelID(c)
	return escrow.VoucherClaim{
		Voucher:      escrow.Voucher{Channel: c, MaxClaimableAmount: big.NewInt(max)},
		Signature:    sign(e.t, key, voucherDigest(e.domain(), id, big.NewInt(max))),
		TotalClaimed: big.NewInt(total),
	}
}

// claimBatchSig is authKey's ClaimBatch signature over rows.
func (e *env) claimBatchSig(authKey *ecdsa.PrivateKey, rows []escrow.VoucherClaim) []byte {
	e.t.Helper()
	return sign(e.t, authKey, e.claimBatchDigest(rows))
}

func (e *env) claimBatchDigest(rows []escrow.VoucherClaim) common.Hash {
	entries := make([]claimEntry, len(rows))
	for i, r := range rows {
		entries[i] = claimEntry{id: e.channelID(r.Voucher.Channel), max: r.Voucher.MaxClaimableAmount, total: r.TotalClaimed}
	}
	return claimBatchDigest(e.domain(), entries)
}

// claimSigned submits rows with claimWithSignature from the relayer, authorized by receiverAuth.
func (e *env) claimSigned(rows ...escrow.VoucherClaim) *types.Receipt {
	e.t.Helper()
	return e.mustSucceed(relayerKey, e.settlement, bs.PackClaimWithSignature(rows, e.claimBatchSig(receiverAuthKey, rows)))
}

// refundCall builds refundWithSignature calldata signed by authKey at the given nonce.
func (e *env) refundCall(authKey *ecdsa.PrivateKey, c escrow.ChannelConfig, amount, nonce int64) []byte {
	e.t.Helper()
	digest := refundDigest(e.domain(), e.channelID(c), big.NewInt(nonce), big.NewInt(amount))
	return bs.PackRefundWithSignature(c, big.NewInt(amount), big.NewInt(nonce), sign(e.t, authKey, digest))
}
