package app

import (
	"context"
	"math/big"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
	"github.com/payper/payper/x402"
)

// sentPayment is one exact payment a payer sent, and whether it was served.
type sentPayment struct {
	payer  common.Address
	nonce  common.Hash
	served bool
}

// TestDevEnvironmentKilledUnderLoad kills `payper dev` as a whole (chain, gateway, demo API in one
// process) with SIGKILL while payers pay by exact and by voucher, restarts it on the same data
// dir, and checks the ledger against the chain: every served payment is settled on the chain
// that came back (nothing served unpaid), no authorization moved money twice, every transfer has
// its record and every record its transfer (nothing lost), and the channel charged what it
// served, give or take the one request in flight.
func TestDevEnvironmentKilledUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	inFlightFor := envInFlightFor + "=2s"
	proc, fields := startChild(t, "ready ", envDevChild+"="+dir, inFlightFor)
	url := fields[0] + "/v1/quote"
	chain, err := evm.Dial(ctx, fields[1], big.NewInt(1337), evm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	payers := []int{2, 3, 4, 5}
	before := map[common.Address]*big.Int{}
	for _, i := range payers {
		a := account(i).Address
		if before[a], err = chain.BalanceOf(ctx, DevTokenAddress, a); err != nil {
			t.Fatal(err)
		}
	}
	chain.Close()

	var mu sync.Mutex
	var attempts []*sentPayment
	servedVoucher := int64(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	req := challenge(t, "GET", url)
	for _, i := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := account(i).Key
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := signPayment(t, key, req)
				pl, err := exact.ParsePayload(p.Payload)
				if err != nil {
					t.Error(err)
					return
				}
				a := &sentPayment{payer: account(i).Address, nonce: pl.Authorization.Nonce}
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
				hreq, _ := http.NewRequest("GET", url, nil)
				hreq.Header.Set(x402.HeaderPaymentSignature, encode(t, p))
				resp, err := client.Do(hreq)
				if err != nil {
					return // killed
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					a.served = true
					mu.Unlock()
				}
			}
		}()
	}
	channelPayer := newChannelPayer(t, url, account(6).Key)
	wg.Add(1)
	go func() {
		defer wg.Done()
		const deposit = 1_000_000
		header := channelPayer.deposit(deposit, 1000)
		// Vouchers are quick next to exact payments: once the deposit is spent, the payer waits.
		for cum := int64(1000); cum <= deposit; cum += 1000 {
			select {
			case <-stop:
				return
			default:
			}
			if cum > 1000 {
				header = channelPayer.voucher(cum)
			}
			hreq, _ := http.NewRequest("GET", url, nil)
			hreq.Header.Set(x402.HeaderPaymentSignature, header)
			resp, err := client.Do(hreq)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("voucher %d: %d", cum, resp.StatusCode)
				return
			}
			mu.Lock()
			servedVoucher = cum
			mu.Unlock()
		}
	}()
	// Kill once the load is well under way.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		served := 0
		for _, a := range attempts {
			if a.served {
				served++
			}
		}
		vouchers := servedVoucher
		mu.Unlock()
		if served >= 8 && vouchers >= 5000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load too slow: %d paid, voucher %d", served, vouchers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	proc.kill()
	close(stop)
	wg.Wait()

	_, fields = startChild(t, "ready ", envDevChild+"="+dir, inFlightFor)
	chain, err = evm.Dial(ctx, fields[1], big.NewInt(1337), evm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	dbPath := filepath.Join(dir, "payper.db")
	settled := map[common.Hash]bool{}
	for _, i := range payers {
		// A payment whose transaction died with the node stays unfinished until its authorization
		// expires: until then anyone holding it could still have it mined.
		for _, p := range waitTerminal(t, dbPath, account(i).Address, 2*time.Minute) {
			if p.Status == store.StatusSettled {
				settled[common.HexToHash(p.Nonce)] = true
			}
		}
	}
	used, servedCount := map[common.Address]int64{}, 0
	for _, a := range attempts {
		onChain, err := chain.AuthorizationState(ctx, DevTokenAddress, a.payer, a.nonce)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case a.served && !onChain:
			t.Errorf("payment %s of %s was served but is not on the chain that came back", a.nonce.Hex(), a.payer.Hex())
		case onChain != settled[a.nonce]:
			t.Errorf("payment %s: on chain %v, recorded settled %v", a.nonce.Hex(), onChain, settled[a.nonce])
		}
		if onChain {
			used[a.payer]++
		}
		if a.served {
			servedCount++
		}
	}
	for _, i := range payers {
		a := account(i).Address
		after, err := chain.BalanceOf(ctx, DevTokenAddress, a)
		if err != nil {
			t.Fatal(err)
		}
		if spent := new(big.Int).Sub(before[a], after); spent.Int64() != used[a]*1000 {
			t.Errorf("payer %d spent %s for %d transfers of 1000", i, spent, used[a])
		}
	}

	// The channel: charges in flight at the kill expire and are given back; what is left
	// charged covers every voucher served, and at most the one in flight beyond it.
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.ListChannels(ctx, store.ChannelFilter{Payer: channelPayer.signer.Address().Hex()})
	st.Close()
	if err != nil || len(list) != 1 {
		t.Fatalf("channels of the voucher payer: %+v %v", list, err)
	}
	ch := waitChannel(t, dbPath, list[0].ID, 30*time.Second, func(ch *store.Channel) bool { return ch.InFlight.Sign() == 0 })
	onChain, err := chain.ChannelState(ctx, common.HexToHash(ch.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Charged.Int64() < servedVoucher || ch.Charged.Int64() > servedVoucher+1000 || onChain.TotalClaimed.Cmp(ch.Charged) > 0 {
		t.Errorf("channel charged %s, claimed on chain %s, for vouchers served up to %d", ch.Charged, onChain.TotalClaimed, servedVoucher)
	}
	t.Logf("killed after %d exact payments served (%d sent) and vouchers up to %d", servedCount, len(attempts), servedVoucher)
}
