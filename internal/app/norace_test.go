//go:build !race

package app

// heldConnections is how many idle connections TestFreshClientServedWhileManyIdleConnectionsAreHeld
// holds: the number the defect was reported with.
const heldConnections = 10_000
