package testusdc_test

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/contracts/testusdc"
)

func TestMetadata(t *testing.T) {
	c := newChain(t, nil)
	c.deploy()

	for _, v := range []struct{ got, constant, spec any }{
		{read(c, c.token.PackName(), c.token.UnpackName), testusdc.Name, "USD Coin"},
		{read(c, c.token.PackSymbol(), c.token.UnpackSymbol), testusdc.Symbol, "USDC"},
		{read(c, c.token.PackDecimals(), c.token.UnpackDecimals), uint8(testusdc.Decimals), uint8(6)},
	} {
		if v.got != v.constant || v.got != v.spec {
			t.Errorf("contract returns %v, package constant %v, want %v", v.got, v.constant, v.spec)
		}
	}
	if got := read(c, c.token.PackMinter(), c.token.UnpackMinter); got != minter {
		t.Errorf("minter %s", got)
	}
	if got := read(c, c.token.PackDOMAINSEPARATOR(), c.token.UnpackDOMAINSEPARATOR); got != c.domain() {
		t.Errorf("DOMAIN_SEPARATOR %x, want %x", got, c.domain())
	}
	d := read(c, c.token.PackEip712Domain(), c.token.UnpackEip712Domain)
	if d.Name != "USD Coin" || d.Version != testusdc.EIP712Version || d.ChainId.Cmp(c.chainID) != 0 || d.VerifyingContract != c.address {
		t.Errorf("eip712Domain %+v", d)
	}
	typeHashes := map[string][32]byte{
		transferType + authorizationFields:                      read(c, c.token.PackTRANSFERWITHAUTHORIZATIONTYPEHASH(), c.token.UnpackTRANSFERWITHAUTHORIZATIONTYPEHASH),
		receiveType + authorizationFields:                       read(c, c.token.PackRECEIVEWITHAUTHORIZATIONTYPEHASH(), c.token.UnpackRECEIVEWITHAUTHORIZATIONTYPEHASH),
		"CancelAuthorization(address authorizer,bytes32 nonce)": read(c, c.token.PackCANCELAUTHORIZATIONTYPEHASH(), c.token.UnpackCANCELAUTHORIZATIONTYPEHASH),
	}
	for typ, got := range typeHashes {
		if want := crypto.Keccak256Hash([]byte(typ)); got != want {
			t.Errorf("type hash of %s is %x, want %x", typ, got, want)
		}
	}
}

func TestMint(t *testing.T) {
	c := newChain(t, nil)
	c.deploy()

	r := c.mustSucceed(minterKey, c.token.PackMint(payer, usdc(1234)))
	ev, err := c.token.UnpackTransferEvent(r.Logs[0])
	if err != nil || ev.From != (common.Address{}) || ev.To != payer || ev.Value.Cmp(usdc(1234)) != 0 {
		t.Fatalf("mint Transfer event %+v, %v", ev, err)
	}
	wantBalance(t, c, payer, usdc(1234))
	if got := read(c, c.token.PackTotalSupply(), c.token.UnpackTotalSupply); got.Cmp(usdc(1234)) != 0 {
		t.Fatalf("totalSupply %s", got)
	}

	// The slots the genesis helpers name are where the contract really keeps the numbers.
	for slot, want := range map[common.Hash]*big.Int{testusdc.BalanceSlot(payer): usdc(1234), testusdc.TotalSupplySlot: usdc(1234)} {
		raw, err := c.client.StorageAt(t.Context(), c.address, slot, nil)
		if err != nil || new(big.Int).SetBytes(raw).Cmp(want) != 0 {
			t.Fatalf("slot %s holds %x (%v), want %s", slot, raw, err, want)
		}
	}

	c.mustRevert(payerKey, c.token.PackMint(payer, usdc(1)), testusdc.ReasonNotMinter)
	wantBalance(t, c, payer, usdc(1234))
}

// fixture is a deployed token with 10 USDC minted to payer.
func fixture(t *testing.T) *chain {
	c := newChain(t, nil)
	c.deploy()
	c.mint(payer, usdc(1000))
	return c
}

// authorize returns an authorization of value from payer to payee valid for an hour.
func authorize(c *chain, value *big.Int, nonce byte) authorization {
	now := c.now()
	return authorization{
		from: payer, to: payee, value: value,
		validAfter: big.NewInt(int64(now) - 1), validBefore: big.NewInt(int64(now) + 3600),
		nonce: [32]byte{nonce, 0xaa},
	}
}

// signedCall packs a transferWithAuthorization or receiveWithAuthorization in the v,r,s form
// or the bytes form.
type signedCall func(c *chain, a authorization, sig signature) []byte

func transferVRS(c *chain, a authorization, sig signature) []byte {
	v, r, s := sig.vrs()
	return c.token.PackTransferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s)
}

func transferBytes(c *chain, a authorization, sig signature) []byte {
	return c.token.PackTransferWithAuthorizationSig(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig)
}

func receiveVRS(c *chain, a authorization, sig signature) []byte {
	v, r, s := sig.vrs()
	return c.token.PackReceiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, v, r, s)
}

func receiveBytes(c *chain, a authorization, sig signature) []byte {
	return c.token.PackReceiveWithAuthorizationSig(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig)
}

var transferForms = map[string]signedCall{"v,r,s": transferVRS, "bytes": transferBytes}

// wantAuthorizationLogs checks the receipt holds AuthorizationUsed then Transfer.
func wantAuthorizationLogs(t *testing.T, c *chain, r *types.Receipt, a authorization) {
	t.Helper()
	if len(r.Logs) != 2 {
		t.Fatalf("%d logs, want AuthorizationUsed and Transfer", len(r.Logs))
	}
	used, err := c.token.UnpackAuthorizationUsedEvent(r.Logs[0])
	if err != nil || used.Authorizer != a.from || used.Nonce != a.nonce {
		t.Fatalf("AuthorizationUsed %+v, %v", used, err)
	}
	tr, err := c.token.UnpackTransferEvent(r.Logs[1])
	if err != nil || tr.From != a.from || tr.To != a.to || tr.Value.Cmp(a.value) != 0 {
		t.Fatalf("Transfer %+v, %v", tr, err)
	}
}

func TestTransferWithAuthorization(t *testing.T) {
	for name, pack := range transferForms {
		t.Run(name, func(t *testing.T) {
			c := fixture(t)
			a := authorize(c, usdc(150), 1)
			sig := sign(t, payerKey, a.digest(c.domain(), transferType))

			r := c.mustSucceed(relayerKey, pack(c, a, sig))
			wantAuthorizationLogs(t, c, r, a)
			wantBalance(t, c, payer, usdc(850))
			wantBalance(t, c, payee, usdc(150))
			wantBalance(t, c, relayer, big.NewInt(0))
			if !c.used(payer, a.nonce) {
				t.Fatal("authorizationState is false after use")
			}

			c.mustRevert(relayerKey, pack(c, a, sig), testusdc.ReasonUsedOrCanceled)
			wantBalance(t, c, payer, usdc(850))
		})
	}
}

func TestTransferWithAuthorizationRejects(t *testing.T) {
	c := fixture(t)
	wrongRecipient := func(a authorization) authorization { a.to = relayer; return a }
	cases := []struct {
		name   string
		mutate func(a authorization) authorization // applied after signing; nil keeps a
		signer func(c *chain, a authorization) signature
		pack   signedCall
		reason string
	}{{
		name: "expired",
		pack: func(c *chain, a authorization, _ signature) []byte {
			a.validBefore = big.NewInt(int64(c.now()) - 1)
			return transferVRS(c, a, sign(t, payerKey, a.digest(c.domain(), transferType)))
		},
		reason: testusdc.ReasonExpired,
	}, {
		name: "not yet valid",
		pack: func(c *chain, a authorization, _ signature) []byte {
			a.validAfter = big.NewInt(int64(c.now()) + 3600)
			a.validBefore = big.NewInt(int64(c.now()) + 7200)
			return transferBytes(c, a, sign(t, payerKey, a.digest(c.domain(), transferType)))
		},
		reason: testusdc.ReasonNotYetValid,
	}, {
		name: "wrong signer",
		signer: func(c *chain, a authorization) signature {
			return sign(t, payeeKey, a.digest(c.domain(), transferType))
		},
		pack:   transferVRS,
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name:   "recipient changed after signing",
		mutate: wrongRecipient,
		pack:   transferBytes,
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name:   "receive signature used for transfer",
		signer: func(c *chain, a authorization) signature { return sign(t, payerKey, a.digest(c.domain(), receiveType)) },
		pack:   transferVRS,
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name:   "high-s twin, v,r,s",
		pack:   func(c *chain, a authorization, sig signature) []byte { return transferVRS(c, a, sig.highSTwin()) },
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name:   "high-s twin, bytes",
		pack:   func(c *chain, a authorization, sig signature) []byte { return transferBytes(c, a, sig.highSTwin()) },
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name: "v not 27 or 28",
		pack: func(c *chain, a authorization, sig signature) []byte {
			bad := bytes.Clone(sig)
			bad[64] = 29
			return transferVRS(c, a, bad)
		},
		reason: testusdc.ReasonInvalidSignature,
	}, {
		name:   "short signature",
		pack:   func(c *chain, a authorization, sig signature) []byte { return transferBytes(c, a, sig[:64]) },
		reason: testusdc.ReasonInvalidSignature,
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := authorize(c, usdc(100), byte(i+1))
			var sig signature
			if tc.signer != nil {
				sig = tc.signer(c, a)
			} else {
				sig = sign(t, payerKey, a.digest(c.domain(), transferType))
			}
			if tc.mutate != nil {
				a = tc.mutate(a)
			}
			c.mustRevert(relayerKey, tc.pack(c, a, sig), tc.reason)
			wantBalance(t, c, payer, usdc(1000))
			if c.used(payer, a.nonce) {
				t.Fatal("a rejected authorization was marked used")
			}
		})
	}
}

// TestTimeWindow pins the bounds: valid only while validAfter < block.timestamp < validBefore.
func TestTimeWindow(t *testing.T) {
	c := fixture(t)
	// Move the chain an hour ahead of the wall clock: from then on every block is exactly one
	// second after its parent, so the next block's timestamp is known in advance.
	if err := c.sim.AdjustTime(time.Hour); err != nil {
		t.Fatal(err)
	}
	signed := func(validAfter, validBefore uint64, nonce byte) []byte {
		a := authorize(c, usdc(100), nonce)
		a.validAfter, a.validBefore = new(big.Int).SetUint64(validAfter), new(big.Int).SetUint64(validBefore)
		return transferVRS(c, a, sign(t, payerKey, a.digest(c.domain(), transferType)))
	}

	next := c.now() + 1
	c.mustRevert(relayerKey, signed(next, next+100, 1), testusdc.ReasonNotYetValid)
	next = c.now() + 1
	c.mustRevert(relayerKey, signed(0, next, 2), testusdc.ReasonExpired)
	next = c.now() + 1
	c.mustSucceed(relayerKey, signed(next-1, next+1, 3))
	wantBalance(t, c, payee, usdc(100))

	// An authorization for the future works once the chain gets there.
	later := signed(c.now()+1800, c.now()+7200, 4)
	c.mustRevert(relayerKey, later, testusdc.ReasonNotYetValid)
	if err := c.sim.AdjustTime(time.Hour); err != nil {
		t.Fatal(err)
	}
	c.mustSucceed(relayerKey, later)
	wantBalance(t, c, payee, usdc(200))
}

func TestReceiveWithAuthorization(t *testing.T) {
	for name, pack := range map[string]signedCall{"v,r,s": receiveVRS, "bytes": receiveBytes} {
		t.Run(name, func(t *testing.T) {
			c := fixture(t)
			a := authorize(c, usdc(250), 1)
			sig := sign(t, payerKey, a.digest(c.domain(), receiveType))

			c.mustRevert(relayerKey, pack(c, a, sig), testusdc.ReasonCallerNotPayee)
			if c.used(payer, a.nonce) {
				t.Fatal("nonce used by a rejected call")
			}
			transferSig := sign(t, payerKey, a.digest(c.domain(), transferType))
			c.mustRevert(payeeKey, pack(c, a, transferSig), testusdc.ReasonInvalidSignature)

			r := c.mustSucceed(payeeKey, pack(c, a, sig))
			wantAuthorizationLogs(t, c, r, a)
			wantBalance(t, c, payer, usdc(750))
			wantBalance(t, c, payee, usdc(250))
			c.mustRevert(payeeKey, pack(c, a, sig), testusdc.ReasonUsedOrCanceled)
		})
	}
}

func TestCancelAuthorization(t *testing.T) {
	forms := map[string]func(c *chain, authorizer common.Address, nonce [32]byte, sig signature) []byte{
		"v,r,s": func(c *chain, authorizer common.Address, nonce [32]byte, sig signature) []byte {
			v, r, s := sig.vrs()
			return c.token.PackCancelAuthorization(authorizer, nonce, v, r, s)
		},
		"bytes": func(c *chain, authorizer common.Address, nonce [32]byte, sig signature) []byte {
			return c.token.PackCancelAuthorizationSig(authorizer, nonce, sig)
		},
	}
	for name, cancel := range forms {
		t.Run(name, func(t *testing.T) {
			c := fixture(t)
			a := authorize(c, usdc(100), 7)
			transferSig := sign(t, payerKey, a.digest(c.domain(), transferType))

			forged := sign(t, relayerKey, cancelDigest(c.domain(), payer, a.nonce))
			c.mustRevert(relayerKey, cancel(c, payer, a.nonce, forged), testusdc.ReasonInvalidSignature)
			if c.used(payer, a.nonce) {
				t.Fatal("forged cancellation marked the nonce")
			}

			cancelSig := sign(t, payerKey, cancelDigest(c.domain(), payer, a.nonce))
			r := c.mustSucceed(relayerKey, cancel(c, payer, a.nonce, cancelSig))
			ev, err := c.token.UnpackAuthorizationCanceledEvent(r.Logs[0])
			if err != nil || ev.Authorizer != payer || ev.Nonce != a.nonce {
				t.Fatalf("AuthorizationCanceled %+v, %v", ev, err)
			}
			if !c.used(payer, a.nonce) {
				t.Fatal("authorizationState is false after cancel")
			}

			c.mustRevert(relayerKey, transferVRS(c, a, transferSig), testusdc.ReasonUsedOrCanceled)
			c.mustRevert(relayerKey, cancel(c, payer, a.nonce, cancelSig), testusdc.ReasonUsedOrCanceled)
			wantBalance(t, c, payer, usdc(1000))
		})
	}
}

func TestInsufficientBalanceIsCustomError(t *testing.T) {
	c := fixture(t)
	a := authorize(c, usdc(1001), 1)
	calldata := transferBytes(c, a, sign(t, payerKey, a.digest(c.domain(), transferType)))
	if r := c.send(relayerKey, calldata); r.Status != types.ReceiptStatusFailed {
		t.Fatal("overdraft succeeded")
	}
	decoded, err := c.token.UnpackError(c.revertData(relayerKey, calldata))
	e, ok := decoded.(*testusdc.TestUSDCERC20InsufficientBalance)
	if err != nil || !ok || e.Sender != payer || e.Balance.Cmp(usdc(1000)) != 0 || e.Needed.Cmp(usdc(1001)) != 0 {
		t.Fatalf("revert %#v, %v; want ERC20InsufficientBalance", decoded, err)
	}
	if c.used(payer, a.nonce) {
		t.Fatal("a reverted transfer left its nonce used")
	}
}
