// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice Test-only ERC-20 that, once armed, makes one call of the test's choosing from inside
/// its next transfer, the way a hostile token would call back into the contract paying it out.
/// The outcome of that call is recorded instead of bubbling up, so a test can check both that
/// the outer operation finished and that the callback was refused.
contract ReentrantToken is ERC20 {
    address public hookTarget;
    bytes public hookData;
    bool public hookRan;
    bool public hookSucceeded;
    bytes public hookResult;

    constructor() ERC20("Reentrant Token", "REENTER") {}

    /// @notice Anyone may mint; this token only exists in tests.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arranges for `data` to be sent to `target` during the next transfer.
    function arm(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
        hookRan = false;
        hookSucceeded = false;
        delete hookResult;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address target = hookTarget;
        if (target == address(0) || from == address(0)) return;
        hookTarget = address(0); // fire once
        (bool ok, bytes memory result) = target.call(hookData);
        hookRan = true;
        hookSucceeded = ok;
        hookResult = result;
    }
}
