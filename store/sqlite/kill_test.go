package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/payper/payper/store/sqlite"
)

// envKillDB makes the test binary run killChild on the database it names.
const envKillDB = "PAYPER_SQLITE_KILL_DB"

const killChannels = 8

// TestKilledMidChargesLosesNoAcknowledgedCharge: a process charging channels from several
// goroutines is killed with SIGKILL while charges are in flight. Reopened, every channel holds
// at least the last charge the process was told had succeeded.
func TestKilledMidChargesLosesNoAcknowledgedCharge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payper.db")
	s := openStore(t, path, sqlite.Options{})
	for n := range killChannels {
		if err := s.CreateChannel(t.Context(), testChannel(n)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	cmd, sc := startChild(t, envKillDB+"="+path)
	acked := make([]int64, killChannels)
	for lines := 0; lines < 400 && sc.Scan(); lines++ {
		var n int
		var charged int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &n, &charged); err != nil || n < 0 || n >= killChannels {
			t.Fatalf("child: unexpected line %q", sc.Text())
		}
		acked[n] = max(acked[n], charged)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s = openStore(t, path, sqlite.Options{})
	for n, want := range acked {
		c, err := s.GetChannel(t.Context(), testChannel(n).ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Charged.Int64() < want {
			t.Errorf("channel %d: charged %s after the kill, but %d was acknowledged", n, c.Charged, want)
		}
	}
	t.Logf("acknowledged before the kill: %v", acked)
}

// killChild charges every channel by 1 in a loop from one goroutine per channel, printing
// "channel charged" after each charge the store confirmed, until it is killed.
func killChild(path string) int {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	lines := make(chan string, killChannels)
	for n := range killChannels {
		go func() {
			c, err := s.GetChannel(ctx, testChannel(n).ID)
			if err != nil {
				fmt.Fprintln(os.Stderr, "get:", err)
				os.Exit(1)
			}
			for {
				if err := s.ChargeChannel(ctx, chargeBy(c, 1)); err != nil {
					fmt.Fprintln(os.Stderr, "charge:", err)
					os.Exit(1)
				}
				c.Charged.Add(c.Charged, big.NewInt(1))
				lines <- strconv.Itoa(n) + " " + c.Charged.String()
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for line := range lines {
		// Written before the next is taken: an acknowledgement is printed only after the store
		// returned, and unbuffered so the parent sees it before the kill.
		fmt.Fprintln(w, line)
		w.Flush()
	}
	return 0
}
