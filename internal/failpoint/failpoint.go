// Package failpoint stops a process at a named step of a money path, so that crash tests can
// kill it exactly there (SIGKILL) and check what a restart recovers. It does nothing unless the
// environment variable PAYPER_FAILPOINT names the step when the process starts: then the
// goroutine reaching that step announces it on stderr and waits forever.
package failpoint

import (
	"fmt"
	"os"
)

// Env names the step to stop at.
const Env = "PAYPER_FAILPOINT"

// Reached is the line written to stderr, followed by the step's name, when a step is reached.
const Reached = "failpoint reached: "

// armed is read once: a step check on the request path is one string comparison.
var armed = os.Getenv(Env)

// Steps of the money paths, in the order a request meets them.
const (
	ExactReserved   = "exact-reserved"    // the authorization's nonce is reserved; nothing sent
	ExactWriteAhead = "exact-write-ahead" // the signed transaction's hash is recorded; not yet broadcast
	ExactBroadcast  = "exact-broadcast"   // the transaction was broadcast; no receipt yet
	ExactMined      = "exact-mined"       // the receipt is in; the payment is not yet recorded settled
	AsyncQueued     = "async-queued"      // an async payment is queued; its answer not yet released
	ChannelCharged  = "channel-charged"   // a voucher's charge is recorded in flight; the upstream not yet called
	ChannelFinished = "channel-finished"  // the charge is final; the response not yet released
	ClaimSent       = "claim-sent"        // a claim transaction was mined; the claims not yet recorded
)

// Hit stops the calling goroutine for good when step is the armed one.
func Hit(step string) {
	if armed == "" || armed != step {
		return
	}
	fmt.Fprintln(os.Stderr, Reached+step)
	select {}
}
