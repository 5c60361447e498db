package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// Environment of a child process started by TestTwoProcessesRace.
const (
	envRaceDB    = "PAYPER_SQLITE_RACE_DB"
	envRaceStart = "PAYPER_SQLITE_RACE_START"
)

const (
	raceRounds     = 20
	raceGoroutines = 10
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envRaceDB); path != "" {
		os.Exit(raceChild(path, os.Getenv(envRaceStart)))
	}
	if path := os.Getenv(envKillDB); path != "" {
		os.Exit(killChild(path))
	}
	os.Exit(m.Run())
}

// TestTwoProcessesRace: two gateway processes on one SQLite file race for
// the same authorizations; each round has exactly one winner.
func TestTwoProcessesRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payper.db")
	start := filepath.Join(dir, "start")
	openStore(t, path, sqlite.Options{}).Close() // create the schema

	var outputs []*bufio.Scanner
	var cmds []*exec.Cmd
	for range 2 {
		cmd, sc := startChild(t, envRaceDB+"="+path, envRaceStart+"="+start)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("child did not get ready: %q %v", sc.Text(), sc.Err())
		}
		outputs = append(outputs, sc)
		cmds = append(cmds, cmd)
	}
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	wins := make([]int, raceRounds)
	dups := make([]int, raceRounds)
	for i, sc := range outputs {
		for sc.Scan() {
			var round int
			var result string
			if _, err := fmt.Sscanf(sc.Text(), "%d %s", &round, &result); err != nil || round < 0 || round >= raceRounds {
				t.Fatalf("child %d: unexpected line %q", i, sc.Text())
			}
			switch result {
			case "won":
				wins[round]++
			case "duplicate":
				dups[round]++
			default:
				t.Fatalf("child %d: %s", i, sc.Text())
			}
		}
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	for round := range raceRounds {
		if wins[round] != 1 || dups[round] != 2*raceGoroutines-1 {
			t.Errorf("round %d: %d wins, %d duplicates", round, wins[round], dups[round])
		}
	}
}

// startChild runs this test binary again with env added, killed when the test ends, and
// returns its output.
func startChild(t *testing.T, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// raceChild runs in a child process: it reserves every round's payment from
// raceGoroutines goroutines at once and prints one line per attempt.
func raceChild(path, start string) int {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "start signal never came")
			return 1
		}
	}
	var mu sync.Mutex
	for round := range raceRounds {
		var wg sync.WaitGroup
		for range raceGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.ReservePayment(ctx, testPayment(fmt.Sprintf("%02x", round)))
				result := "won"
				switch {
				case errors.Is(err, store.ErrDuplicate):
					result = "duplicate"
				case err != nil:
					result = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
				}
				mu.Lock()
				defer mu.Unlock()
				fmt.Println(round, result)
			}()
		}
		wg.Wait()
	}
	return 0
}
