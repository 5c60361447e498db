package interop_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/app"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store/sqlite"
	"github.com/payper/payper/x402"
)

// diffEnv is the chain, the settlement method and the frozen clock of the differential test.
type diffEnv struct {
	rpcURL    string
	chainID   *big.Int
	now       time.Time
	payer     devkeys.Account
	offer     x402.PaymentRequirements
	domain    exact.Domain
	usedNonce common.Hash
	method    *exactmethod.Method
	// By case, as the case left them: the seller's offer and Payper's inclusion margin.
	offers  map[string]x402.PaymentRequirements
	margins map[string]time.Duration
}

// newDiffEnv starts the embedded chain with the dev genesis (token, Multicall3), settles one
// payment so that its nonce is used, and freezes the clock one second before the chain's latest
// block. Nothing is mined afterwards: the reference simulates transferWithAuthorization on that
// block, which must find validAfter = now in the past and validBefore = now + 6 in the future,
// exactly as both verifiers judge them by the clock.
func newDiffEnv(t *testing.T) *diffEnv {
	t.Helper()
	ctx := t.Context()
	accounts := devkeys.DevAccounts(diffPayer + 1)
	alloc, contracts := app.DevGenesis()
	contracts = append(contracts, smartWalletGenesis(t, accounts[diffPayer].Address))
	// The wallet holds tokens like the dev accounts do; the token's entry comes first.
	contracts[0].Calls = append(contracts[0].Calls, devchain.GenesisCall{
		From: contracts[0].Deployer, Data: testusdc.NewTestUSDC().PackMint(diffWallet, app.DevTokenPerAccount),
	})
	chain, err := devchain.Start(ctx, devchain.Config{ListenAddr: "127.0.0.1:0", Alloc: alloc, Contracts: contracts})
	if err != nil {
		t.Fatalf("start dev chain: %v", err)
	}
	t.Cleanup(func() { chain.Close() })
	client, err := evm.Dial(ctx, chain.RPCURL(), chain.ChainID(), evm.Options{SettlerKey: accounts[diffSettler].Key})
	if err != nil {
		t.Fatalf("dial dev chain: %v", err)
	}
	t.Cleanup(client.Close)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	offer := exact.Offer{
		Network: fmt.Sprintf("eip155:%d", chain.ChainID()), Asset: app.DevTokenAddress,
		Name: testusdc.Name, Version: testusdc.EIP712Version, PayTo: accounts[diffPayTo].Address, MaxTimeoutSeconds: 60,
	}
	domain, err := offer.Domain()
	if err != nil {
		t.Fatal(err)
	}
	e := &diffEnv{
		rpcURL: chain.RPCURL(), chainID: chain.ChainID(), payer: accounts[diffPayer],
		offer: offer.Requirements(big.NewInt(diffPrice)), domain: domain, usedNonce: nonceFor("settled"),
		offers: map[string]x402.PaymentRequirements{}, margins: map[string]time.Duration{},
	}
	// The default settlement.inclusionMargin is the reference's 6 s, as is the verifier's.
	e.method = e.exactMethod(offer, db, client, exact.DefaultValidityMargin)
	e.settleUsedNonce(ctx, t)
	latest, err := client.LatestBlockTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.now = latest.Add(-time.Second)
	return e
}

// diffWallet is where the smart-wallet payer lives: a contract account that accepts, through
// ERC-1271, what the payer's key signed (contracts/src/testing/SmartWallet.sol).
var diffWallet = common.HexToAddress("0x000000000000000000000000000000000000a11e")

// smartWalletGenesis places the test smart wallet, owned by owner, at diffWallet.
func smartWalletGenesis(t *testing.T, owner common.Address) devchain.GenesisContract {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join("..", "contracts", "artifacts", "SmartWallet.bin"))
	if err != nil {
		t.Fatal(err)
	}
	code := common.FromHex(strings.TrimSpace(string(bin)))
	initCode := append(code, common.LeftPadBytes(owner.Bytes(), 32)...)
	return devchain.GenesisContract{Address: diffWallet, InitCode: initCode, Deployer: owner}
}

// settleUsedNonce settles two payments on the wall clock: the payer's with usedNonce, so that it
// is spent on chain and recorded as settled, signed with v as a parity bit (0 or 1, which
// Payper accepts and the reference does not); and one from the smart wallet, signed by its owner
// and wrapped in ERC-6492. Both are payments Payper accepts: they must also land.
func (e *diffEnv) settleUsedNonce(ctx context.Context, t *testing.T) {
	t.Helper()
	e.now = time.Now()
	parity := e.draftFor("settled")
	parity.auth.Nonce, parity.sig = e.usedNonce, vAsParity
	wallet := e.draftFor("settled by the smart wallet")
	wallet.auth.From, wallet.sig = diffWallet, erc6492
	for _, d := range []*draft{parity, wallet} {
		h, err := d.header()
		if err != nil {
			t.Fatal(err)
		}
		p, err := x402.DecodePaymentPayload(h, 0)
		if err != nil {
			t.Fatal(err)
		}
		charge, err := e.method.Authorize(ctx, e.offer, p, paywall.RequestInfo{Method: http.MethodGet, Route: "/paid", Resource: diffResourceURL})
		if err != nil {
			t.Fatalf("authorize %s's payment: %v", d.auth.From.Hex(), err)
		}
		s, err := charge.Complete(ctx)
		if err != nil {
			t.Fatalf("settle %s's payment: %v", d.auth.From.Hex(), err)
		}
		t.Logf("settled %s's payment in %s", d.auth.From.Hex(), s.Transaction)
	}
}

// draftFor is the valid payment a stock client makes for the offer: validAfter 0, validBefore
// now + maxTimeoutSeconds, the case's own nonce.
func (e *diffEnv) draftFor(name string) *draft {
	return &draft{
		key: e.payer.Key, domain: e.domain, offer: e.offer,
		auth: exact.Authorization{
			From: e.payer.Address, To: common.HexToAddress(e.offer.PayTo), Value: big.NewInt(diffPrice),
			ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(e.now.Unix() + e.offer.MaxTimeoutSeconds), Nonce: nonceFor(name),
		},
	}
}

// exactMethod is the exact method as internal/app wires it for an inclusion margin, on the
// frozen clock.
func (e *diffEnv) exactMethod(offer exact.Offer, ledger exactmethod.Ledger, chain exactmethod.Chain, margin time.Duration) *exactmethod.Method {
	now := func() time.Time { return e.now }
	return &exactmethod.Method{
		Offer: offer, Ledger: ledger, Chain: chain, InclusionMargin: margin, Now: now,
		Verifier: &exact.Verifier{Chain: chain, ValidityMargin: max(exact.DefaultValidityMargin, margin), Now: now},
	}
}

// The gateway's verifier is given the client itself: it must reach smart-wallet payers.
var _ exact.ContractSignatures = (*evm.Client)(nil)
