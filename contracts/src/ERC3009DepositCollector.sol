// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IDepositCollector} from "./IDepositCollector.sol";

/// @notice The EIP-3009 entry point this collector uses: the overload taking the signature as
/// bytes, which also admits ERC-1271 payers.
interface IReceiveWithAuthorization {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;
}

/// @title ERC3009DepositCollector
/// @notice Funds BatchSettlement channels from an EIP-3009 `ReceiveWithAuthorization` the payer
/// signed off-chain, so a relayer can pay the gas of the deposit.
/// @dev EIP-3009's receive variant only lets the payee submit the authorization, so the tokens
/// come here first (the authorization names this contract as `to`) and are passed on to the
/// settlement contract in the same call. The authorization's nonce must be
/// keccak256(abi.encode(channelId, salt)): that ties the payer's signature to one channel, so a
/// front-runner cannot redirect it into another channel. Only the settlement contract fixed at
/// construction may call `collect`; it is an immutable, so deploy with the settlement address
/// the code will serve before copying the runtime code anywhere.
contract ERC3009DepositCollector is IDepositCollector {
    using SafeERC20 for IERC20;

    /// @notice The settlement contract this collector feeds (the getter keeps the reference name).
    address public immutable x402BatchSettlement;

    error OnlyX402BatchSettlement();
    error InvalidX402BatchSettlementAddress();

    constructor(address settlement) {
        if (settlement == address(0)) revert InvalidX402BatchSettlementAddress();
        x402BatchSettlement = settlement;
    }

    /// @inheritdoc IDepositCollector
    /// @dev `collectorData` is abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt,
    /// bytes signature).
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata collectorData)
        external
    {
        if (msg.sender != x402BatchSettlement) revert OnlyX402BatchSettlement();
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(collectorData, (uint256, uint256, uint256, bytes));
        bytes32 nonce = keccak256(abi.encode(channelId, salt));
        IReceiveWithAuthorization(token).receiveWithAuthorization(
            payer, address(this), amount, validAfter, validBefore, nonce, signature
        );
        IERC20(token).safeTransfer(msg.sender, amount);
    }
}
