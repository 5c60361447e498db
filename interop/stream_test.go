package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
)

// streamRun is one paid request stream.mjs read; the line it prints is the last one, with
// every one in Runs.
type streamRun struct {
	Status          int              `json:"status"`
	PaymentResponse *stockSettlement `json:"paymentResponse"`
	Events          []struct {
		MS   float64 `json:"ms"`
		Data string  `json:"data"`
	} `json:"events"`
	Runs []streamRun `json:"runs"`
}

// runStream runs stream.mjs with env and returns what it printed.
func runStream(ctx context.Context, t *testing.T, env map[string]string) streamRun {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, nodeRunLimit)
	defer cancel()
	cmd := exec.CommandContext(rctx, nodeBinary(t), "stream.mjs")
	cmd.Env = scriptEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stream.mjs: %v\n%s", err, stderr.String())
	}
	var run streamRun
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &run); err != nil {
		t.Fatalf("stream.mjs printed %q: %v", stdout.String(), err)
	}
	return run
}

// requireEventByEvent checks that run got n events of the dev API's tick stream, passed on as
// they came: sent every every, the last arrives well after the first. Had the stream been held
// until it ended, they would all arrive within a few milliseconds.
func requireEventByEvent(t *testing.T, name string, run streamRun, n int, every time.Duration) {
	t.Helper()
	if run.Status != 200 || run.PaymentResponse == nil || !run.PaymentResponse.Success || len(run.Events) != n {
		t.Fatalf("%s: status %d, payment response %+v, %d events", name, run.Status, run.PaymentResponse, len(run.Events))
	}
	for i, ev := range run.Events {
		if !strings.Contains(ev.Data, `"seq":`) {
			t.Fatalf("%s: event %d: %q", name, i, ev.Data)
		}
	}
	spread := time.Duration((run.Events[n-1].MS - run.Events[0].MS) * float64(time.Millisecond))
	if spread < every {
		t.Fatalf("%s: events arrived within %s of each other: the stream was not passed on as it came", name, spread)
	}
}

// TestStockClientReadsAPaidStream: the published fetch wrapper pays the dev gateway's event
// stream (/v1/ticks, default configuration: the exact payment settles at the stream's headers)
// and reads it event by event as the upstream sends them, not all at once at the end.
func TestStockClientReadsAPaidStream(t *testing.T) {
	nodeBinary(t) // fail before starting the chain when the npm side is not installed
	ctx := t.Context()
	env := startDev(t)
	payer := devkeys.DevAccounts(testAccountsToUse)[stockRepeatPayer]
	payTo := common.HexToAddress(env.Dev.Info.PayTo)
	before := env.balance(ctx, t, payer.Address)
	const n, every = 4, 400 * time.Millisecond

	run := runStream(ctx, t, map[string]string{
		"URL":         env.Dev.Info.GatewayURL + "/v1/ticks?n=4&every=" + every.String(),
		"PRIVATE_KEY": keyHex(payer),
		"NETWORK":     env.Dev.Info.Network,
		"ASSET":       env.Dev.Info.Asset.Address,
		"MAX_AMOUNT":  big.NewInt(quoteAtomicPrice).String(),
	})
	requireEventByEvent(t, "exact", run, n, every)
	env.requireSettledTransfer(ctx, t, run.PaymentResponse.Transaction, payer.Address, payTo, quoteAtomicPrice)
	requireDelta(t, "payer", before, env.balance(ctx, t, payer.Address), -quoteAtomicPrice)
	t.Logf("stock client: first event after %.1f ms, last after %.1f ms", run.Events[0].MS, run.Events[n-1].MS)
}

// TestStockChannelClientReadsAPaidStream: the published batch-settlement client pays the same
// event stream through an escrow channel — the first request deposits, the second pays with a
// voucher alone — and reads both event by event. The channel is charged exactly the two prices.
func TestStockChannelClientReadsAPaidStream(t *testing.T) {
	nodeBinary(t) // fail before starting the chain when the npm side is not installed
	ctx := t.Context()
	env := startDev(t)
	payer := devkeys.DevAccounts(testAccountsToUse)[stockEchoPayer]
	const n, every, deposit = 4, 400 * time.Millisecond, 20_000
	before := env.balance(ctx, t, payer.Address)
	run := runStream(ctx, t, map[string]string{
		"URL":         env.Dev.Info.GatewayURL + "/v1/ticks?n=4&every=" + every.String(),
		"PRIVATE_KEY": keyHex(payer),
		"NETWORK":     env.Dev.Info.Network,
		"ASSET":       env.Dev.Info.Asset.Address,
		"MAX_AMOUNT":  "100000",
		"SCHEME":      "batch-settlement",
		"RPC_URL":     env.Dev.Info.RPCURL,
		"COUNT":       "2",
		"DEPOSIT":     strconv.Itoa(deposit),
	})
	if len(run.Runs) != 2 {
		t.Fatalf("%d streams read, want 2", len(run.Runs))
	}
	for i, r := range run.Runs {
		requireEventByEvent(t, fmt.Sprintf("stream %d", i), r, n, every)
		if deposited := r.PaymentResponse.Transaction != ""; deposited != (i == 0) {
			t.Fatalf("stream %d: transaction %q; only the first request deposits", i, r.PaymentResponse.Transaction)
		}
		t.Logf("stock channel client, stream %d: first event after %.1f ms", i, r.Events[0].MS)
	}
	requireDelta(t, "payer", before, env.balance(ctx, t, payer.Address), -deposit)
	res, err := env.Dev.Gateway.Claimer().RunOnce(ctx)
	if err != nil || res.Amount.Cmp(big.NewInt(2*quoteAtomicPrice)) != 0 {
		t.Fatalf("claim: %+v %v; want the two streams' price", res, err)
	}
}
