// Package channels serves x402 batch-settlement payments at the gateway: escrow channels that a
// payer funds once and then spends with signed cumulative vouchers.
//
// Method implements paywall.Method. A voucher is verified locally against the channel's record
// (no chain call) and charged with one compare-and-set in the store; a deposit is submitted to the
// escrow contract and mined before its first voucher is charged. The chain is reached only through
// the Chain interface declared here.
package channels
