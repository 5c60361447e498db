// Package contracts holds the Solidity sources of Payper's own contracts (src/: the test
// stablecoin, the batch-settlement escrow and its ERC-3009 deposit collector, Multicall3, and in
// src/testing/ contracts only tests deploy), the pipeline that compiles them (build.mjs, run by
// gen.sh) and the committed artifacts and Go bindings (testusdc/, escrow/, multicall3/,
// internal/testcontracts/).
// Its test fails when the committed artifacts or bindings no longer match the sources.
package contracts
