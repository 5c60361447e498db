package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
)

// streamRun is the line stream.mjs prints.
type streamRun struct {
	Status          int              `json:"status"`
	PaymentResponse *stockSettlement `json:"paymentResponse"`
	Events          []struct {
		MS   float64 `json:"ms"`
		Data string  `json:"data"`
	} `json:"events"`
}

// TestStockClientReadsAPaidStream: the published fetch wrapper pays the dev gateway's event
// stream (/v1/ticks, default configuration: the exact payment settles at the stream's headers)
// and reads it event by event as the upstream sends them, not all at once at the end.
func TestStockClientReadsAPaidStream(t *testing.T) {
	node := nodeBinary(t)
	ctx := t.Context()
	env := startDev(t)
	payer := devkeys.DevAccounts(testAccountsToUse)[stockRepeatPayer]
	payTo := common.HexToAddress(env.Dev.Info.PayTo)
	before := env.balance(ctx, t, payer.Address)
	const n, every = 4, 400 * time.Millisecond

	rctx, cancel := context.WithTimeout(ctx, nodeRunLimit)
	defer cancel()
	cmd := exec.CommandContext(rctx, node, "stream.mjs")
	cmd.Env = scriptEnv(map[string]string{
		"URL":         env.Dev.Info.GatewayURL + "/v1/ticks?n=4&every=" + every.String(),
		"PRIVATE_KEY": keyHex(payer),
		"NETWORK":     env.Dev.Info.Network,
		"ASSET":       env.Dev.Info.Asset.Address,
		"MAX_AMOUNT":  big.NewInt(quoteAtomicPrice).String(),
	})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stream.mjs: %v\n%s", err, stderr.String())
	}
	var run streamRun
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &run); err != nil {
		t.Fatalf("stream.mjs printed %q: %v", stdout.String(), err)
	}
	if run.Status != 200 || run.PaymentResponse == nil || !run.PaymentResponse.Success || len(run.Events) != n {
		t.Fatalf("status %d, payment response %+v, %d events", run.Status, run.PaymentResponse, len(run.Events))
	}
	for i, ev := range run.Events {
		if !strings.Contains(ev.Data, `"seq":`) {
			t.Fatalf("event %d: %q", i, ev.Data)
		}
	}
	// Sent every 400 ms: read as they came, the last arrives well after the first. Had the
	// stream been held until it ended, all four would arrive within a few milliseconds.
	spread := time.Duration((run.Events[n-1].MS - run.Events[0].MS) * float64(time.Millisecond))
	if spread < every {
		t.Fatalf("events arrived within %s of each other: the stream was not passed on as it came", spread)
	}
	env.requireSettledTransfer(ctx, t, run.PaymentResponse.Transaction, payer.Address, payTo, quoteAtomicPrice)
	requireDelta(t, "payer", before, env.balance(ctx, t, payer.Address), -quoteAtomicPrice)
	t.Logf("stock client: first event after %.1f ms, last after %.1f ms", run.Events[0].MS, run.Events[n-1].MS)
}
