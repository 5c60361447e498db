package devchain

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/node"
)

// TestChainFromAnEarlierVersionStillOpens: a data dir whose database is Pebble (what earlier
// versions created) is opened as it is, with a warning that it is not crash-safe; a new data dir
// gets the crash-safe storage.
func TestChainFromAnEarlierVersionStillOpens(t *testing.T) {
	dir := t.TempDir()
	chaindata := filepath.Join(dir, "devchain", "chaindata")
	if got := chooseStorage(chaindata); !got.crashSafe {
		t.Fatalf("fresh data dir: %+v, want crash-safe storage", got)
	}
	// What an earlier version left: a Pebble database with its freezer, opened the way the node
	// opens it.
	stack, err := node.New(&node.Config{Name: "devchain", DataDir: dir, DBEngine: rawdb.DBPebble})
	if err != nil {
		t.Fatal(err)
	}
	db, err := stack.OpenDatabaseWithOptions("chaindata", node.DatabaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := stack.Close(); err != nil {
		t.Fatal(err)
	}
	if got := chooseStorage(chaindata); got.crashSafe || got.engine != "" || got.scheme != "" {
		t.Fatalf("Pebble data dir: %+v, want it opened as it is", got)
	}

	var logs bytes.Buffer
	_, client := startChain(t, Config{DataDir: dir, Alloc: devAlloc(1), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := client.BlockNumber(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "remove it to start a crash-safe chain") {
		t.Fatalf("no warning about the earlier data dir; logged:\n%s", logs.String())
	}
}
