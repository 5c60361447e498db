// Package settle is the settlement engine the payment methods share: it turns calldata a method
// built into transactions on chain and reports what became of them.
//
// SendAndWait sends one call from the settler with a write-ahead hook for every transaction that
// carries it, waits for the receipt and classifies the outcome; the exact method's lone
// settlements, the channel claimer's claims and cooperative refunds all go through it. Batcher
// gathers transfers that complete together into one Multicall3 transaction, with each
// call allowed to fail on its own, and reads every transfer's outcome from the receipt. Queue
// works a durable queue of deferred payments from the store, one replica at a time, and hands
// batches to a QueueSettler (the exact method). The vocabulary of send and wait outcomes (never
// sent, broadcast unknown, settler unfunded, reverted) is package txn's, which the chain adapter
// returns. The settler account itself (nonce allocation, gap repair, replacement of stuck
// transactions, fee ceiling, gas-balance refusal) is package account's Sender, which reaches the
// chain through a small node interface. The engine knows no payment method, no HTTP layer and no chain client: each chain it
// needs is a small interface declared here.
package settle
