package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/chain/devkeys"
)

// TestPayDuringWithdrawal: once part of a channel is being withdrawn, `payper pay` spends only
// what the withdrawal leaves, by voucher, then pays by exact instead of sending vouchers the
// server must refuse; allowed to deposit, it tops the channel up.
func TestPayDuringWithdrawal(t *testing.T) {
	e := startChannelEnv(t)
	payer := devkeys.DevAccounts(8)[7]
	url := e.Dev.Info.GatewayURL + "/v1/quote"
	flags := []string{"--channels-dir", t.TempDir(), "--data-dir", e.devDir}
	who := append([]string{"--dev-account", "7"}, flags...)
	pay := append([]string{"pay"}, who[:4]...)
	payerBefore := e.balance(payer.Address)

	e.mustPayper(append(append([]string{"channel", "open", "--deposit", "$0.01"}, who...), url)...)
	e.mustPayper(append(pay, url)...)
	out, _ := e.mustPayper(append(append([]string{"channel", "withdraw", "--no-wait", "--json", "--amount", "$0.007"}, who...), url)...)
	var w withdrawal
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.Amount != "7000" || w.InitiateTx == "" {
		t.Fatalf("withdraw: %v %+v", err, w)
	}
	// The gateway learns of the withdrawal as its watcher would within seconds.
	if err := e.Dev.Gateway.Watcher().RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := e.status(flags...)[0]
	if v.PendingWithdrawal != "7000" || v.Charged != "2000" || v.Remaining != "1000" {
		t.Fatalf("status after withdraw: %+v", v)
	}
	out, _ = e.mustPayper(append([]string{"channel", "status"}, flags...)...)
	wantContains(t, "status", out, "withdrawing $0.007 (7000) (not in remaining)", "remaining  $0.001 (1000)")

	// What the withdrawal leaves pays one more request by voucher.
	_, info := e.mustPayper(append(pay, url)...)
	wantContains(t, "pay within what remains", info, "paid $0.001 (1000 atomic) by voucher", "charged $0.003 of $0.01")
	// Then nothing remains: exact, every time, with no refused voucher in between.
	for i := 0; i < 2; i++ {
		_, info = e.mustPayper(append(pay, url)...)
		if strings.Contains(info, "voucher") || !strings.Contains(info, "tx 0x") {
			t.Fatalf("pay %d with nothing left in the channel: %s", i, info)
		}
	}
	if v := e.status(flags...)[0]; v.Charged != "3000" || v.Remaining != "0" || v.PendingWithdrawal != "7000" {
		t.Fatalf("status after paying by exact: %+v", v)
	}
	// Allowed to deposit, it tops the channel up past the withdrawal.
	_, info = e.mustPayper(append(append([]string{"pay", "--max-deposit", "$0.01"}, who[:4]...), url)...)
	wantContains(t, "pay --max-deposit", info, "by voucher", "deposited $0.01 into the channel, tx 0x", "charged $0.004 of $0.02")
	if v := e.status(flags...)[0]; v.Balance != "20000" || v.Charged != "4000" || v.Remaining != "9000" || v.PendingWithdrawal != "7000" {
		t.Fatalf("status after the top-up: %+v", v)
	}
	if spent := payerBefore - e.balance(payer.Address); spent != 22_000 {
		t.Fatalf("payer spent %d; want two deposits of 10000 and two exact payments", spent)
	}
}

// TestWithdrawKeepsConcurrentPayments: `payper pay` runs while `payper channel withdraw` waits
// out the delay; finalizing the withdrawal keeps what that payment recorded.
func TestWithdrawKeepsConcurrentPayments(t *testing.T) {
	e := startChannelEnv(t)
	ctx := context.Background()
	key := devkeys.DevAccounts(9)[8].Key
	url := e.Dev.Info.GatewayURL + "/v1/quote"
	dir := t.TempDir()
	flags := []string{"--channels-dir", dir, "--data-dir", e.devDir}
	who := append([]string{"--dev-account", "8"}, flags...)
	e.mustPayper(append(append([]string{"channel", "open", "--deposit", "$0.01"}, who...), url)...)

	fs := newFlagSet("test", "test", io.Discard)
	cf := addChannelFlags(fs)
	if err := parseFlags(fs, flags); err != nil {
		t.Fatal(err)
	}
	st, err := cf.store()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := findChannel(st, url, key)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := newWithdrawer(ctx, cf, st, key, rec.Network, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.chain.Close()
	paid := false
	w.sleep = func(ctx context.Context, _ time.Duration) error {
		if !paid { // a payment while the withdrawal waits
			paid = true
			_, info := e.mustPayper(append(append([]string{"pay"}, who[:4]...), url)...)
			wantContains(t, "pay while withdrawing", info, "by voucher", "charged $0.002 of $0.01")
			if r, err := st.Load(rec.ChannelID); err != nil || r.PendingWithdrawal == nil || r.PendingWithdrawal.Int64() != 5000 {
				t.Errorf("record while withdrawing: %+v %v", r, err)
			}
		}
		return e.Dev.Chain.AdjustTime(ctx, 901*time.Second)
	}
	if err := w.run(ctx, rec, big.NewInt(5000), false); err != nil {
		t.Fatalf("withdraw: %v\n%s", err, out.String())
	}
	wantContains(t, "withdraw", out.String(), "started a withdrawal of $0.005 (5000)", "withdrew $0.005 (5000)", "channel balance now $0.005 (5000)")
	if !paid {
		t.Fatal("the withdrawal never waited")
	}
	got, err := st.Load(rec.ChannelID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Charged.Int64() != 2000 || got.SignedMax.Int64() != 2000 || got.Balance.Int64() != 5000 || got.WithdrawalPending() ||
		got.Remaining().Int64() != 3000 || !got.HasOrigin(url) {
		t.Fatalf("record after finalizing: charged %s signed %s balance %s pending %s remaining %s",
			got.Charged, got.SignedMax, got.Balance, got.PendingWithdrawal, got.Remaining())
	}
	// The server agrees, once its watcher has seen the payout: the next voucher builds on the
	// concurrent payment.
	if err := e.Dev.Gateway.Watcher().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	_, info := e.mustPayper(append(append([]string{"pay"}, who[:4]...), url)...)
	wantContains(t, "pay after the withdrawal", info, "by voucher", "charged $0.003 of $0.005")
	cs, err := e.Chain.ChannelState(ctx, rec.ChannelID)
	if err != nil || cs.Balance.Int64() != 5000 || cs.PendingWithdrawal.Sign() != 0 {
		t.Fatalf("on chain: %+v %v", cs, err)
	}
}
