// Package contracts holds the Solidity sources of Payper's own contracts (src/), the pipeline
// that compiles them (build.mjs, run by gen.sh) and the committed artifacts and Go bindings.
// Its test fails when the committed artifacts or bindings no longer match the sources.
package contracts
