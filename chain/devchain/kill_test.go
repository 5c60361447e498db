package devchain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/chain/devkeys"
)

// envKillDataDir makes the test binary run killChild on the data dir it names.
const envKillDataDir = "PAYPER_DEVCHAIN_KILL_DIR"

// Shape of the load the killed chain is under.
const (
	killSenders = 4  // accounts sending transfers concurrently
	killBlocks  = 12 // distinct blocks with a seen receipt before the kill
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envKillDataDir); dir != "" {
		os.Exit(killChild(dir))
	}
	os.Exit(m.Run())
}

// killConfig is the chain both the killed child and the test reopen. It is unpaced: a block
// every few milliseconds leaves the most writes in flight at the kill.
func killConfig(dir string) Config {
	return Config{ListenAddr: "127.0.0.1:0", DataDir: dir, Alloc: devAlloc(killSenders), Unpaced: true}
}

// TestKilledChainKeepsEverySeenReceipt: a process mining transfers from several senders is
// killed with SIGKILL while transactions are in flight. Reopened, the chain is at least at the
// last block whose receipt the process reported, and every reported receipt is still there, in
// the same block.
func TestKilledChainKeepsEverySeenReceipt(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKillDataDir+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	seen := make(map[common.Hash]common.Hash) // transaction → block hash
	blocks := make(map[common.Hash]uint64)    // block hash → number
	nonces := make(map[common.Address]uint64) // sender → next nonce after its seen receipts
	var highest uint64
	sc := bufio.NewScanner(out)
	for len(blocks) < killBlocks && sc.Scan() {
		var number, nonce uint64
		var txHex, blockHex, fromHex string
		if _, err := fmt.Sscanf(sc.Text(), "%s %d %s %s %d", &txHex, &number, &blockHex, &fromHex, &nonce); err != nil {
			t.Fatalf("child: unexpected line %q", sc.Text())
		}
		block := common.HexToHash(blockHex)
		seen[common.HexToHash(txHex)], blocks[block] = block, number
		from := common.HexToAddress(fromHex)
		nonces[from] = max(nonces[from], nonce+1)
		highest = max(highest, number)
	}
	if len(blocks) < killBlocks {
		t.Fatalf("child stopped after %d blocks: %v", len(blocks), sc.Err())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, client := startChain(t, killConfig(dir))
	head, err := client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed after %d receipts in %d blocks (highest %d); reopened at block %d", len(seen), len(blocks), highest, head)
	if head < highest {
		t.Errorf("reopened at block %d, but block %d was reported mined", head, highest)
	}
	missing := 0
	for tx, block := range seen {
		r, err := client.TransactionReceipt(ctx, tx)
		switch {
		case errors.Is(err, ethereum.NotFound):
			missing++
		case err != nil:
			t.Fatalf("receipt %s: %v", tx, err)
		case r.BlockHash != block:
			t.Errorf("tx %s: in block %s after the restart, reported in %s", tx, r.BlockHash, block)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d reported receipts are gone after the restart", missing, len(seen))
	}
	// The head's state is there too: every sender's nonce counts its reported transactions.
	for from, want := range nonces {
		if got, err := client.NonceAt(ctx, from, nil); err != nil || got < want {
			t.Errorf("nonce of %s after the restart = %d (%v), want >= %d", from, got, err, want)
		}
	}
}

// killChild runs a chain in dir and keeps killSenders accounts sending transfers, each waiting
// for its receipt; it prints "tx block-number block-hash sender nonce" for every receipt it read,
// until it is killed.
func killChild(dir string) int {
	ctx := context.Background()
	chain, err := Start(ctx, killConfig(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	lines := make(chan string)
	var wg sync.WaitGroup
	for _, from := range devkeys.DevAccounts(killSenders) {
		wg.Go(func() {
			if err := sendUntilKilled(ctx, chain, from, lines); err != nil {
				fmt.Fprintln(os.Stderr, "sender:", err)
				os.Exit(1)
			}
		})
	}
	w := bufio.NewWriter(os.Stdout)
	for line := range lines {
		// Unbuffered, so the parent sees a receipt before it kills.
		fmt.Fprintln(w, line)
		w.Flush()
	}
	wg.Wait()
	return 0
}

// sendUntilKilled sends transfers from one account to itself, one at a time, and reports each
// receipt on lines.
func sendUntilKilled(ctx context.Context, chain *Chain, from devkeys.Account, lines chan<- string) error {
	client, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		return err
	}
	signer := types.LatestSignerForChainID(chain.ChainID())
	for nonce := uint64(0); ; nonce++ {
		tx := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
			ChainID: chain.ChainID(), Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e10),
			Gas: 21_000, To: &from.Address, Value: big.NewInt(1),
		})
		if err := client.SendTransaction(ctx, tx); err != nil {
			return fmt.Errorf("send nonce %d: %w", nonce, err)
		}
		for {
			r, err := client.TransactionReceipt(ctx, tx.Hash())
			if err == nil {
				lines <- fmt.Sprintf("%s %d %s %s %d", tx.Hash().Hex(), r.BlockNumber.Uint64(), r.BlockHash.Hex(), from.Address.Hex(), nonce)
				break
			}
			if !errors.Is(err, ethereum.NotFound) {
				return fmt.Errorf("receipt: %w", err)
			}
			time.Sleep(2 * time.Millisecond) // polling, as any client does
		}
	}
}
