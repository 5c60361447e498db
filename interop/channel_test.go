package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os/exec"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/escrow"
)

type stockChannelRun struct {
	Results []struct {
		Status          int    `json:"status"`
		Body            string `json:"body"`
		PaymentResponse *struct {
			Success     bool           `json:"success"`
			Transaction string         `json:"transaction"`
			Amount      string         `json:"amount"`
			Payer       string         `json:"payer"`
			Extra       map[string]any `json:"extra"`
		} `json:"paymentResponse"`
	} `json:"results"`
	Refund *struct {
		Success     bool   `json:"success"`
		Transaction string `json:"transaction"`
		Amount      string `json:"amount"`
	} `json:"refund"`
}

func runStockChannel(ctx context.Context, t *testing.T, vars map[string]string) stockChannelRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, nodeRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBinary(t), "channel.mjs")
	cmd.Env = scriptEnv(vars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("channel.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var run stockChannelRun
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &run); err != nil {
		t.Fatalf("channel.mjs printed %q: %v", stdout.String(), err)
	}
	return run
}

// TestStockBatchClientPaysThroughChannel: the official batch-settlement client deposits once,
// then pays every further request with a voucher and no transaction; one claim then moves
// exactly the charged sum to the provider.
func TestStockBatchClientPaysThroughChannel(t *testing.T) {
	nodeBinary(t) // fail before starting the chain when the npm side is not installed
	ctx := context.Background()
	env := startDev(t)
	payer := devkeys.DevAccounts(10)[5]
	payTo := common.HexToAddress(env.Dev.Info.PayTo)
	const count, price, deposit = 12, 1000, 20_000
	payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)
	escrowBefore := env.balance(ctx, t, escrow.BatchSettlementAddress)
	blockBefore, _ := env.Chain.BlockNumber(ctx)

	run := runStockChannel(ctx, t, map[string]string{
		"URL": env.Dev.Info.GatewayURL + "/v1/quote", "PRIVATE_KEY": keyHex(payer), "NETWORK": env.Dev.Info.Network,
		"ASSET": env.Dev.Info.Asset.Address, "MAX_AMOUNT": "100000", "RPC_URL": env.Dev.Info.RPCURL,
		"COUNT": "12", "DEPOSIT": "20000",
	})
	if len(run.Results) != count {
		t.Fatalf("%d results", len(run.Results))
	}
	for i, r := range run.Results {
		if r.Status != 200 || r.PaymentResponse == nil || !r.PaymentResponse.Success {
			t.Fatalf("request %d: %d %+v %s", i, r.Status, r.PaymentResponse, r.Body)
		}
		wantTx := i == 0 // only the first request deposits
		if (r.PaymentResponse.Transaction != "") != wantTx {
			t.Fatalf("request %d: transaction %q", i, r.PaymentResponse.Transaction)
		}
	}
	blockAfter, _ := env.Chain.BlockNumber(ctx)
	if blockAfter-blockBefore != 1 {
		t.Fatalf("%d blocks were mined for %d paid requests; want exactly one (the deposit)", blockAfter-blockBefore, count)
	}
	requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -deposit)
	requireDelta(t, "escrow", escrowBefore, env.balance(ctx, t, escrow.BatchSettlementAddress), deposit)
	requireDelta(t, "payTo before the claim", payToBefore, env.balance(ctx, t, payTo), 0)

	res, err := env.Dev.Gateway.Claimer().RunOnce(ctx)
	if err != nil || res.Channels != 1 || res.Amount.Cmp(big.NewInt(count*price)) != 0 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	requireDelta(t, "payTo after one claim", payToBefore, env.balance(ctx, t, payTo), count*price)
	requireDelta(t, "escrow after the claim", escrowBefore, env.balance(ctx, t, escrow.BatchSettlementAddress), deposit-count*price)
	if again, err := env.Dev.Gateway.Claimer().RunOnce(ctx); err != nil || again.Channels != 0 {
		t.Fatalf("second claim round: %+v %v", again, err)
	}
}

// TestStockBatchClientRefund: the official client's cooperative refund gets the unspent deposit
// back in one transaction, which also pays the provider what was charged.
func TestStockBatchClientRefund(t *testing.T) {
	nodeBinary(t)
	ctx := context.Background()
	env := startDev(t)
	payer := devkeys.DevAccounts(10)[6]
	payTo := common.HexToAddress(env.Dev.Info.PayTo)
	payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)
	run := runStockChannel(ctx, t, map[string]string{
		"URL": env.Dev.Info.GatewayURL + "/v1/quote", "PRIVATE_KEY": keyHex(payer), "NETWORK": env.Dev.Info.Network,
		"ASSET": env.Dev.Info.Asset.Address, "MAX_AMOUNT": "100000", "RPC_URL": env.Dev.Info.RPCURL,
		"COUNT": "5", "DEPOSIT": "10000", "REFUND": "1",
	})
	for i, r := range run.Results {
		if r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	if run.Refund == nil || !run.Refund.Success || run.Refund.Amount != "5000" || run.Refund.Transaction == "" {
		t.Fatalf("refund: %+v", run.Refund)
	}
	requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -5000)
	requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo), 5000)
}
