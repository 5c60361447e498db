package sqlite

import (
	"fmt"
	"os"
)

// walFlusher returns the flush for grouped channel charges: they commit with
// synchronous=NORMAL, which in WAL mode writes the log but does not sync it,
// and are acknowledged only after this syncs the log file.
//
// The file is opened anew for each flush. SQLite reuses the same -wal file
// while any connection is open (this Store keeps its writer open), and a
// flush of the file's inode covers writes made through SQLite's own
// descriptor. Frames an earlier checkpoint moved into the database file were
// synced there by that checkpoint, which at NORMAL syncs the log first and
// the database after.
func walFlusher(dbPath string) func() error {
	wal := dbPath + "-wal"
	return func() error {
		f, err := os.Open(wal)
		if err != nil {
			return fmt.Errorf("open write-ahead log: %w", err)
		}
		defer f.Close()
		if err := syncData(f); err != nil {
			return fmt.Errorf("sync write-ahead log: %w", err)
		}
		return nil
	}
}
