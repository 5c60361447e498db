package devchain

import (
	"github.com/ethereum/go-ethereum/core/rawdb"
)

// storage is how the node keeps the chain on disk.
//
// go-ethereum's defaults lose recent blocks when the process dies without a clean shutdown:
// the path-based state scheme holds the state of the last 128 blocks in memory and writes it
// out only on Close, so a killed node reopens at its last flushed state and drops every block
// above it (with their transactions); and Pebble, the default database, acknowledges writes
// that still sit in its in-process log buffer.
//
// A dev chain is small, so it stores state the hash-based way in archive mode, where every
// block's state trie is written while the block is inserted, before it becomes the head; it
// keeps no snapshot layers (another in-memory structure rebuilt after a crash); and it uses
// LevelDB, whose every write reaches the operating system before it returns. Whatever a client
// could read survives a SIGKILL of the process. Nothing is fsynced, so a power cut may still
// lose the last blocks.
type storage struct {
	engine        string // node.Config.DBEngine; "" opens whatever exists
	scheme        string // ethconfig.Config.StateScheme; "" keeps the stored one
	archive       bool   // ethconfig.Config.NoPruning
	snapshotCache int    // ethconfig.Config.SnapshotCache, in MB; 0 keeps no snapshot layers
	crashSafe     bool
}

// chooseStorage picks the storage for the chain database at chaindata ("" when in memory). A
// database created by an earlier version (Pebble, path scheme) is opened as it is: converting
// it is not possible in place, and a newcomer's chain should not vanish on an upgrade.
func chooseStorage(chaindata string) storage {
	if chaindata != "" && rawdb.PreexistingDatabase(chaindata) == rawdb.DBPebble {
		return storage{snapshotCache: 16}
	}
	return storage{engine: rawdb.DBLeveldb, scheme: rawdb.HashScheme, archive: true, crashSafe: true}
}
