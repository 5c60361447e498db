// Package app wires Payper's packages into running programs: the gateway (store, chain client,
// payment methods, paywall, reverse proxy, reconciler) and the dev environment (embedded chain,
// test stablecoin, demo API and a gateway in front of it). It is the only package besides the
// command that sees the whole configuration.
package app
