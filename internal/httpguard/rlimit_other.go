//go:build !unix

package httpguard

// OpenFileLimit reports that the open-file limit is unknown on this system.
func OpenFileLimit() (limit uint64, ok bool) { return 0, false }
