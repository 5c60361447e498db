// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IDepositCollector} from "../IDepositCollector.sol";

/// @title PullCollector
/// @notice Test-only deposit collector that takes tokens with transferFrom (the payer approves
/// it beforehand) and can misbehave on request: deliver less than asked, or call back into the
/// settlement contract before delivering. It checks no authorization at all; never deploy it
/// outside tests.
contract PullCollector is IDepositCollector {
    uint256 public shortfall;
    bytes public reentryData;
    bool public reentryRan;
    bool public reentrySucceeded;
    bytes public reentryResult;

    /// @notice Makes the next collections deliver `amount - shortfall_`.
    function setShortfall(uint256 shortfall_) external {
        shortfall = shortfall_;
    }

    /// @notice Makes the next collection call its caller with `data` first (empty: no call).
    function setReentry(bytes calldata data) external {
        reentryData = data;
        reentryRan = false;
        reentrySucceeded = false;
        delete reentryResult;
    }

    function collect(address payer, address token, uint256 amount, bytes32, bytes calldata) external {
        bytes memory data = reentryData;
        if (data.length != 0) {
            delete reentryData;
            (bool ok, bytes memory result) = msg.sender.call(data);
            reentryRan = true;
            reentrySucceeded = ok;
            reentryResult = result;
        }
        require(IERC20(token).transferFrom(payer, msg.sender, amount - shortfall), "PullCollector: pull failed");
    }
}
