// Package account is the settlement engine's keeper of the settler account: the one place that
// allocates its nonces, prices its transactions and makes sure every nonce it used lands.
//
// A Sender signs each transaction before broadcast, so that its hash can be recorded first
// (write-ahead), and keeps it until it is mined: a transaction no node holds any more is
// broadcast again, a nonce gap is filled with a 0-value transfer to the settler itself, an
// allocator ahead of a rewound chain moves back, and a transaction not mined in time is replaced
// with fees raised by an eighth, up to a ceiling (Repair). It refuses, before signing, a
// transaction the account cannot pay gas for, and watches the account's balance. It reaches the
// chain only through Node, which chain/evm's Client implements; waiting for receipts stays with
// the node, which asks the sender about the transactions it holds (FlightOf, Variants, Land).
package account
