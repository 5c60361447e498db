//go:build race

package app

// heldConnections is how many idle connections TestFreshClientServedWhileManyIdleConnectionsAreHeld
// holds. The race detector makes each connection about ten times slower, and the full count is
// about scale, not about data races, which the limiter's own tests cover under the detector.
const heldConnections = 1_000
