// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IDepositCollector
/// @notice What BatchSettlement expects from a deposit collector: a contract that knows one way
/// of pulling a payer's tokens (an EIP-3009 authorization, a Permit2 signature, ...) and hands
/// them to the settlement contract that called it.
/// @dev The settlement contract does not trust a collector's word: it compares its own token
/// balance before and after `collect` and rejects the deposit unless it grew by exactly `amount`.
interface IDepositCollector {
    /// @notice Moves exactly `amount` of `token` from `payer` to the caller.
    /// @param payer Owner of the tokens; the channel's payer.
    /// @param token The ERC-20 being deposited.
    /// @param amount How much to move.
    /// @param channelId The channel being funded, so an authorization can be bound to it.
    /// @param collectorData Collector-specific encoding of the payer's authorization.
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata collectorData)
        external;
}
