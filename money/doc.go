// Package money parses and formats token amounts exactly.
//
// Amounts are *big.Int values in an asset's atomic units (for USDC with 6
// decimals, 1 atomic unit is $0.000001). Conversions between human strings and
// atomic units use integer arithmetic only; floats never touch money.
//
// Strings come in two forms:
//
//   - "$0.001" is a dollar amount. The asset is assumed to be a stablecoin
//     whose whole unit is worth one dollar, so "$1" is 10^decimals atomic units.
//     The package does no currency conversion.
//   - "1000" is an integer number of atomic units, the form x402 uses on the
//     wire.
//
// A bare decimal such as "0.5" is rejected as ambiguous. Every accepted amount
// lies in [0, 2^256-1], the range of an EVM uint256.
//
// The package imports only the standard library, does no I/O and keeps no
// state.
package money
