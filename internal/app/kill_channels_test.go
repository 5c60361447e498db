package app

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// channelOf reads a channel from a gateway's SQLite database while the gateway runs.
func channelOf(t *testing.T, dbPath, id string) *store.Channel {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ch, err := st.GetChannel(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitChannel polls a channel until ok accepts it.
func waitChannel(t *testing.T, dbPath, id string, within time.Duration, ok func(*store.Channel) bool) *store.Channel {
	t.Helper()
	return waitFor(t, within, func() *store.Channel { return channelOf(t, dbPath, id) }, ok)
}

// TestGatewayKilledWithAChargeInFlight: a gateway is killed (SIGKILL) after a voucher's charge is
// recorded and before its request was answered. The restarted gateway gives the charge back once
// it expires, never claims it, and the payer's retry of the same voucher is served and charged
// once. A second kill, after a claim transaction was mined but before it was recorded, loses
// nothing either: the next round records it, and the provider is paid exactly what was served.
func TestGatewayKilledWithAChargeInFlight(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := devConfig(DevOptions{DataDir: dir, Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, up.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Channels.ClaimInterval = time.Second
	cfgPath, dbPath := writeConfig(t, cfg), filepath.Join(dir, "payper.db")
	inFlightFor := envInFlightFor + "=3s"

	gw := startGatewayProcess(t, cfgPath, failpoint.ChannelCharged, inFlightFor)
	url := gw.url + "/v1/quote"
	p := newChannelPayer(t, url, account(8).Key)
	payerBefore := e.balance(p.signer.Address())
	// The deposit's own voucher stops at the failpoint too: deposit, then kill.
	header := p.deposit(10_000, 1000)
	answered := sendAway(url, header)
	gw.waitStep(failpoint.ChannelCharged)
	gw.kill()
	if status := <-answered; status != 0 {
		t.Fatalf("the killed gateway answered %d", status)
	}
	if up.calls.Load() != 0 {
		t.Fatal("the upstream was called for a request whose charge was never answered")
	}
	payToBefore := e.balance(e.payTo)

	// Restarted: the deposit stands (it is the payer's money, in the escrow), the charge in
	// flight expires and is given back; nothing is claimed.
	gw = startGatewayProcess(t, cfgPath, "", inFlightFor)
	url = gw.url + "/v1/quote"
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.ListChannels(ctx, store.ChannelFilter{Payer: p.signer.Address().Hex()})
	st.Close()
	if err != nil || len(list) != 1 {
		t.Fatalf("channels of the payer: %+v %v", list, err)
	}
	id := list[0].ID
	waitChannel(t, dbPath, id, 30*time.Second, func(ch *store.Channel) bool { return ch.Charged.Sign() == 0 && ch.InFlight.Sign() == 0 })
	// The payer pays the same first 1000 again, by voucher this time: served, charged once.
	if r := send(t, "GET", url, p.voucher(1000)); r.status != 200 {
		t.Fatalf("voucher after the restart: %d %s", r.status, r.body)
	}
	gw.kill()

	// Killed again once a claim was mined, before it was recorded.
	gw = startGatewayProcess(t, cfgPath, failpoint.ClaimSent, inFlightFor)
	gw.waitStep(failpoint.ClaimSent)
	gw.kill()
	gw = startGatewayProcess(t, cfgPath, "", inFlightFor)
	ch := waitChannel(t, dbPath, id, 60*time.Second, func(ch *store.Channel) bool { return ch.Claimed.Int64() == 1000 })
	onChain, err := e.chain.ChannelState(ctx, common.HexToHash(id))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Charged.Int64() != 1000 || onChain.TotalClaimed.Int64() != 1000 || onChain.Balance.Int64() != 10_000 {
		t.Fatalf("after the claim: record %+v, chain %+v; want 1000 charged and claimed of 10000", ch, onChain)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 1000 {
		t.Fatalf("payTo received %s, want exactly the 1000 served", got)
	}
	if spent := new(big.Int).Sub(payerBefore, e.balance(p.signer.Address())); spent.Int64() != 10_000 {
		t.Fatalf("payer spent %s, want the 10000 deposit", spent)
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("upstream served %d requests, want 1", n)
	}
}
