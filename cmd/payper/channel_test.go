package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/devtest"
	"github.com/payper/payper/scheme/batch"
)

// channelEnv is a dev environment served on loopback, with a read-only chain client.
type channelEnv struct {
	*devtest.Env
	t      *testing.T
	devDir string
}

func startChannelEnv(t *testing.T) *channelEnv {
	t.Helper()
	env := devtest.Start(t, app.DevOptions{})
	return &channelEnv{Env: env, t: t, devDir: env.DataDir}
}

func (e *channelEnv) balance(addr common.Address) int64 { return e.Balance(addr).Int64() }

func (e *channelEnv) block() uint64 { return e.Block() }

// payper runs the CLI and returns stdout and stderr.
func (e *channelEnv) payper(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func (e *channelEnv) mustPayper(args ...string) (string, string) {
	e.t.Helper()
	out, errOut, err := e.payper(args...)
	if err != nil {
		e.t.Fatalf("payper %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

func (e *channelEnv) status(common ...string) []channelView {
	e.t.Helper()
	out, _ := e.mustPayper(append([]string{"channel", "status", "--json"}, common...)...)
	var views []channelView
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return views
}

func wantContains(t *testing.T, what, got string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(got, p) {
			t.Fatalf("%s lacks %q:\n%s", what, p, got)
		}
	}
}

// TestChannelCommands: open a channel from the command line, see it, pay through it with
// `payper pay`, and start a withdrawal, checking every amount on chain.
func TestChannelCommands(t *testing.T) {
	e := startChannelEnv(t)
	payer := devkeys.DevAccounts(6)[5]
	payTo, escrow := common.HexToAddress(e.Dev.Info.PayTo), batch.SettlementAddress
	url := e.Dev.Info.GatewayURL + "/v1/quote"
	flags := []string{"--channels-dir", t.TempDir(), "--data-dir", e.devDir}
	who := append([]string{"--dev-account", "5"}, flags...)
	payerBefore, payToBefore, escrowBefore, blockBefore := e.balance(payer.Address), e.balance(payTo), e.balance(escrow), e.block()

	out, _ := e.mustPayper(append(append([]string{"channel", "open", "--deposit", "$0.01"}, who...), url)...)
	wantContains(t, "open", out, "opened channel 0x", "deposit    $0.01 (10000)  tx 0x", "charged    $0.001 (1000)", "remaining  $0.009 (9000)",
		"payer      "+payer.Address.Hex())
	if e.block() != blockBefore+1 || e.balance(payer.Address) != payerBefore-10_000 {
		t.Fatalf("open: %d blocks, payer spent %d; want one deposit of 10000", e.block()-blockBefore, payerBefore-e.balance(payer.Address))
	}
	if _, _, err := e.payper(append(append([]string{"channel", "open", "--deposit", "$0.01"}, who...), url)...); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("opening the same channel twice: %v", err)
	}

	// `payper pay` finds the channel and pays by voucher, with no transaction.
	for _, charged := range []string{"$0.002", "$0.003"} {
		body, info := e.mustPayper(append(append([]string{"pay"}, who[:4]...), url)...)
		wantContains(t, "pay", info, "paid $0.001 (1000 atomic) by voucher", "charged "+charged+" of $0.01, $0.00")
		if body == "" {
			t.Fatal("pay printed no body")
		}
	}
	if e.block() != blockBefore+1 || e.balance(payer.Address) != payerBefore-10_000 {
		t.Fatal("vouchers touched the chain")
	}
	// --no-channel pays on chain instead.
	_, info := e.mustPayper(append(append([]string{"pay", "--no-channel"}, who[:4]...), url)...)
	wantContains(t, "pay --no-channel", info, "paid $0.001 (1000 atomic) from", "tx 0x")
	if e.balance(payer.Address) != payerBefore-11_000 {
		t.Fatalf("payer spent %d; want the deposit and one exact payment", payerBefore-e.balance(payer.Address))
	}

	views := e.status(flags...)
	if len(views) != 1 {
		t.Fatalf("status: %+v", views)
	}
	v := views[0]
	if v.Deposited != "10000" || v.Charged != "3000" || v.Remaining != "7000" || v.OnChain == nil ||
		v.OnChain.Balance != "10000" || v.OnChain.TotalClaimed != "0" || v.OnChain.PendingWithdrawal != "0" || v.Payer != payer.Address.Hex() {
		t.Fatalf("status: %+v %+v", v, v.OnChain)
	}
	out, _ = e.mustPayper(append([]string{"channel", "status"}, flags...)...)
	wantContains(t, "status", out, "channel "+v.ChannelID, "remaining  $0.007 (7000)", "on chain   balance $0.01 (10000), claimed $0 (0)")
	if out, _ := e.mustPayper(append(append([]string{"channel", "status"}, flags...), "http://127.0.0.1:1/")...); !strings.Contains(out, "no channels") {
		t.Fatalf("status for another server: %s", out)
	}

	// The provider claims what was charged; the payer then starts taking the rest back.
	if res, err := e.Dev.Gateway.Claimer().RunOnce(context.Background()); err != nil || res.Amount.Int64() != 3000 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	started := time.Now().Unix()
	out, _ = e.mustPayper(append(append([]string{"channel", "withdraw", "--no-wait", "--json"}, who...), url)...)
	var w withdrawal
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("withdraw --json: %v\n%s", err, out)
	}
	if w.Amount != "7000" || w.InitiateTx == "" || w.FinalizeTx != "" || w.RemainingSeconds <= 0 || w.RemainingSeconds > w.ReadyAt-started+1 {
		t.Fatalf("withdraw: %+v", w)
	}
	cs, err := e.Chain.ChannelState(context.Background(), common.HexToHash(v.ChannelID))
	if err != nil {
		t.Fatal(err)
	}
	if cs.PendingWithdrawal.Int64() != 7000 || cs.Balance.Int64() != 10_000 || cs.TotalClaimed.Int64() != 3000 ||
		w.ReadyAt != cs.WithdrawRequestedAt+900 {
		t.Fatalf("on chain after withdraw: %+v; readyAt %d", cs, w.ReadyAt)
	}
	// Run again before the delay is over: it reports the wait and sends nothing.
	blockNow := e.block()
	out, _ = e.mustPayper(append(append([]string{"channel", "withdraw", "--no-wait"}, who...), v.ChannelID)...)
	wantContains(t, "second withdraw", out, "withdrawal of $0.007 (7000) from channel "+v.ChannelID+" is pending", "run this command again then")
	if e.block() != blockNow {
		t.Fatal("a second --no-wait withdraw sent a transaction")
	}
	if views := e.status(flags...); views[0].OnChain.PendingWithdrawal != "7000" || views[0].OnChain.WithdrawableAt != w.ReadyAt {
		t.Fatalf("status after withdraw: %+v", views[0].OnChain)
	}
	// Every token is accounted for: the payer paid 3000 by voucher and 1000 on chain, and 7000
	// waits in the escrow.
	if e.balance(payTo)-payToBefore != 4000 || e.balance(escrow)-escrowBefore != 7000 || payerBefore-e.balance(payer.Address) != 11_000 {
		t.Fatalf("payTo +%d escrow +%d payer -%d", e.balance(payTo)-payToBefore, e.balance(escrow)-escrowBefore, payerBefore-e.balance(payer.Address))
	}

	// The delay passes (the dev chain's clock jumps 15 minutes): withdraw finalizes and the payer
	// has back exactly what it did not spend.
	if err := e.Dev.Chain.AdjustTime(context.Background(), 901*time.Second); err != nil {
		t.Fatal(err)
	}
	out, _ = e.mustPayper(append(append([]string{"channel", "withdraw", "--json"}, who...), v.ChannelID)...)
	var done withdrawal
	if err := json.Unmarshal([]byte(out), &done); err != nil {
		t.Fatalf("final withdraw --json: %v\n%s", err, out)
	}
	if done.Withdrawn != "7000" || done.FinalizeTx == "" || done.RemainingSeconds != 0 {
		t.Fatalf("final withdraw: %+v", done)
	}
	if e.balance(escrow) != escrowBefore || payerBefore-e.balance(payer.Address) != 4000 || e.balance(payTo)-payToBefore != 4000 {
		t.Fatalf("after finalizing: escrow %+d payer -%d payTo +%d; want 0, 4000, 4000",
			e.balance(escrow)-escrowBefore, payerBefore-e.balance(payer.Address), e.balance(payTo)-payToBefore)
	}
	if views := e.status(flags...); views[0].OnChain.Balance != "3000" || views[0].OnChain.PendingWithdrawal != "0" {
		t.Fatalf("status after finalizing: %+v", views[0].OnChain)
	}
}

// TestChannelRefundCommand: a cooperative refund returns the unspent deposit at once; afterwards
// `payper pay` no longer pays through the empty channel.
func TestChannelRefundCommand(t *testing.T) {
	e := startChannelEnv(t)
	payer := devkeys.DevAccounts(7)[6]
	payTo := common.HexToAddress(e.Dev.Info.PayTo)
	url := e.Dev.Info.GatewayURL + "/v1/quote"
	flags := []string{"--channels-dir", t.TempDir(), "--data-dir", e.devDir}
	who := append([]string{"--dev-account", "6"}, flags...)
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(payTo)

	e.mustPayper(append(append([]string{"channel", "open", "--deposit", "10000"}, who...), url)...)
	e.mustPayper(append(append([]string{"pay"}, who[:4]...), url)...)
	out, _ := e.mustPayper(append(append([]string{"channel", "refund"}, who...), url)...)
	wantContains(t, "refund", out, "refunded $0.008 (8000) from channel 0x", "tx         0x", "remaining  $0 (0)", "refunded   $0.008 (8000)")
	if payerBefore-e.balance(payer.Address) != 2000 || e.balance(payTo)-payToBefore != 2000 {
		t.Fatalf("payer -%d payTo +%d; want exactly the 2000 charged", payerBefore-e.balance(payer.Address), e.balance(payTo)-payToBefore)
	}
	views := e.status(flags...)
	if len(views) != 1 || views[0].Remaining != "0" || views[0].Refunded != "8000" || views[0].OnChain.Balance != "2000" || views[0].OnChain.TotalClaimed != "2000" {
		t.Fatalf("status after refund: %+v %+v", views, views[0].OnChain)
	}
	// The channel is empty and `pay` may not deposit: it pays on chain.
	_, info := e.mustPayper(append(append([]string{"pay"}, who[:4]...), url)...)
	if strings.Contains(info, "voucher") || !strings.Contains(info, "tx 0x") {
		t.Fatalf("pay after a full refund: %s", info)
	}
	// With --max-deposit it tops the channel up instead.
	_, info = e.mustPayper(append(append([]string{"pay", "--max-deposit", "$0.01"}, who[:4]...), url)...)
	wantContains(t, "pay --max-deposit", info, "by voucher", "deposited $0.01 into the channel, tx 0x", "charged $0.003 of $0.012")
	if payerBefore-e.balance(payer.Address) != 13_000 {
		t.Fatalf("payer -%d; want 2000 + 1000 exact + a 10000 top-up", payerBefore-e.balance(payer.Address))
	}
}

func TestWaitUntilPrintsProgress(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		clock = clock.Add(d)
		return nil
	}
	var out bytes.Buffer
	deadline := clock.Add(35 * time.Second)
	if err := waitUntil(context.Background(), deadline, func() time.Time { return clock }, sleep, 10*time.Second, &out); err != nil {
		t.Fatal(err)
	}
	want := "waiting for the withdraw delay: 35s left\nwaiting for the withdraw delay: 25s left\n" +
		"waiting for the withdraw delay: 15s left\nwaiting for the withdraw delay: 5s left\n"
	if out.String() != want || len(slept) != 4 || slept[3] != 5*time.Second || !clock.Equal(deadline) {
		t.Fatalf("output %q, sleeps %v", out.String(), slept)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitUntil(ctx, time.Now().Add(time.Hour), time.Now, backoff.Sleep, time.Second, &out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestChannelUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"channel"}, {"channel", "nope"}, {"channel", "open", "http://127.0.0.1:1/"}, {"channel", "withdraw"}, {"channel", "refund"}} {
		if err := run(context.Background(), args, &out, &errOut); err != errUsage {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"channel", "status", "--channels-dir", t.TempDir(), "--data-dir", t.TempDir()}, &out, &errOut); err != nil || !strings.Contains(out.String(), "no channels") {
		t.Fatalf("status of an empty directory: %v %q", err, out.String())
	}
}
