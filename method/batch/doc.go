// Package batchmethod is the gateway side of x402 batch-settlement payments: escrow channels that
// a payer funds once and then spends with signed cumulative vouchers.
//
// Method implements paywall.Method. A voucher is verified locally against the channel's record
// (no chain call) and charged with one compare-and-set in the store; a deposit is submitted to the
// escrow contract and mined before its first voucher is charged; a cooperative refund (Refunds)
// claims the outstanding voucher and returns the rest in one transaction.
//
// The recovery jobs have the shape of the exact method's: Claimer turns charged vouchers into the
// receiver's tokens, one claim transaction per round, and Watcher follows the escrow's events to
// keep channel records in step with the chain; each has RunOnce and Run. The chain is reached only
// through the small interfaces declared here (Chain, ClaimChain, RefundChain, WatchChain).
package batchmethod
