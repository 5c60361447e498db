package app

import (
	"context"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/x402"
)

// TestConcurrentExactPaymentsShareTransactions: 100 exact payments completing at the same time
// are settled in a handful of transactions. One of them cannot be paid (its payer's two
// payments exceed its balance together, though each alone verified): it is refused on its own,
// and every other payment lands; every balance moves by exactly what was served.
func TestConcurrentExactPaymentsShareTransactions(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	ctx := context.Background()

	// A payer holding 1500: either of its two payments of 1000 verifies, not both.
	poorKey, _ := crypto.GenerateKey()
	poor := crypto.PubkeyToAddress(poorKey.PublicKey)
	funder, err := dialAs(e, account(9).Key)
	if err != nil {
		t.Fatal(err)
	}
	defer funder.Close()
	tx, err := funder.Send(ctx, e.token, testusdc.NewTestUSDC().PackTransfer(poor, big.NewInt(1500)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := funder.WaitMined(ctx, tx); err != nil {
		t.Fatal(err)
	}

	req := challenge(t, "GET", url)
	var headers []string
	payers := []int{2, 3, 4, 5, 6, 7, 8}
	for i := 0; i < 98; i++ {
		headers = append(headers, encode(t, signPayment(t, account(payers[i%len(payers)]).Key, req)))
	}
	headers = append(headers, encode(t, signPayment(t, poorKey, req)), encode(t, signPayment(t, poorKey, req)))
	before := map[common.Address]*big.Int{e.payTo: e.balance(e.payTo), poor: e.balance(poor)}
	for _, i := range payers {
		before[account(i).Address] = e.balance(account(i).Address)
	}

	results := make([]result, len(headers))
	var wg sync.WaitGroup
	for i, h := range headers {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = send(t, "GET", url, h) }()
	}
	wg.Wait()
	txs := map[string]bool{}
	served, refused := 0, 0
	for i, r := range results {
		switch {
		case r.status == 200 && r.settlement != nil && r.settlement.Success:
			served++
			txs[r.settlement.Transaction] = true
		case i >= 98 && r.status == 402 && r.settlement != nil &&
			strings.HasPrefix(r.settlement.ErrorReason, string(x402.ReasonExactInsufficientBalance)):
			refused++
		default:
			t.Fatalf("payment %d: %d %s", i, r.status, r.body)
		}
	}
	if served != 99 || refused != 1 {
		t.Fatalf("served %d, refused %d; want 99 and 1", served, refused)
	}
	if len(txs) > 10 {
		t.Fatalf("99 payments settled in %d transactions, want a handful", len(txs))
	}
	for _, i := range payers {
		a := account(i).Address
		want := int64(0)
		for j := 0; j < 98; j++ {
			if payers[j%len(payers)] == i {
				want += 1000
			}
		}
		if spent := new(big.Int).Sub(before[a], e.balance(a)).Int64(); spent != want {
			t.Fatalf("payer %d spent %d, want %d", i, spent, want)
		}
	}
	if spent := new(big.Int).Sub(before[poor], e.balance(poor)).Int64(); spent != 1000 {
		t.Fatalf("the payer of 1500 spent %d, want the one payment it could afford", spent)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), before[e.payTo]).Int64(); got != 99_000 {
		t.Fatalf("payTo received %d, want 99000", got)
	}
	t.Logf("99 payments settled in %d transactions", len(txs))
}
