// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IDepositCollector} from "./IDepositCollector.sol";

/// @title BatchSettlement
/// @notice Escrow for payment channels of the x402 `batch-settlement` scheme (EVM binding).
/// A payer locks tokens in a channel once; the receiver is then paid with off-chain vouchers,
/// each carrying a cumulative ceiling signed by the payer. The receiver side records claims for
/// many channels in one transaction and later sweeps everything it claimed for one token with a
/// single transfer. The payer can always take back what was not claimed, either at once with
/// the receiver's consent (refund) or alone after the channel's notice period (withdrawal).
/// @dev The external interface (function selectors, struct layouts, events, errors and EIP-712
/// types) is that of the x402 reference deployment, so stock x402 clients and facilitators work
/// against this contract unchanged.
///
/// A channel is identified by the EIP-712 digest of its ChannelConfig under this contract's
/// domain, so the id is bound to the chain and to the address the code runs at. The runtime code
/// is meant to be copied into a genesis block at a fixed address after the constructor ran
/// elsewhere: nothing here reads state the constructor wrote, and OpenZeppelin's EIP712 rebuilds
/// the domain separator whenever address(this) or the chain id differ from the constructor's.
///
/// Accounting per channel: `balance` is what was deposited minus what went back to the payer;
/// `totalClaimed` only grows and never exceeds `balance`. Claimed tokens stay in the contract
/// until `settle` sends them to the receiver, so the contract always holds the sum of all
/// balances minus everything settled.
contract BatchSettlement is EIP712, Multicall, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The immutable parameters of a channel; their EIP-712 hash is the channel id.
    struct ChannelConfig {
        address payer; // owns the escrow and receives withdrawals and refunds
        address payerAuthorizer; // signs vouchers; zero means the payer signs (ERC-1271 allowed)
        address receiver; // gets the claimed tokens on settle
        address receiverAuthorizer; // signs claim batches and refunds; never zero
        address token; // the ERC-20 held in escrow
        uint40 withdrawDelay; // notice period of a payer withdrawal, in seconds
        bytes32 salt; // lets one payer keep several otherwise identical channels
    }

    /// @notice A payer's promise: the receiver may claim up to `maxClaimableAmount` in total.
    struct Voucher {
        ChannelConfig channel;
        uint128 maxClaimableAmount;
    }

    /// @notice One row of a claim: the voucher, the payer's signature over it, and the new
    /// cumulative total the receiver side wants recorded (at most the voucher's ceiling).
    struct VoucherClaim {
        Voucher voucher;
        bytes signature;
        uint128 totalClaimed;
    }

    struct Channel {
        uint128 balance;
        uint128 totalClaimed;
    }

    struct Withdrawal {
        uint128 amount;
        uint40 initiatedAt; // zero when none is pending
    }

    struct ReceiverTotals {
        uint128 totalClaimed;
        uint128 totalSettled;
    }

    /// @notice Bounds of ChannelConfig.withdrawDelay, checked on every deposit.
    uint40 public constant MIN_WITHDRAW_DELAY = 15 minutes;
    uint40 public constant MAX_WITHDRAW_DELAY = 30 days;

    bytes32 public constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 public constant REFUND_TYPEHASH = keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 public constant CLAIM_ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 public constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );

    /// @notice Escrow and cumulative claims per channel.
    mapping(bytes32 channelId => Channel) public channels;
    /// @notice The nonce the next signed refund of a channel must carry. Every refund, signed or
    /// direct, advances it, even one that ends up moving nothing.
    mapping(bytes32 channelId => uint256) public refundNonce;
    /// @notice The payer's withdrawal in its notice period, if any.
    mapping(bytes32 channelId => Withdrawal) public pendingWithdrawals;
    /// @notice What each receiver claimed and was paid, per token, across all its channels.
    mapping(address receiver => mapping(address token => ReceiverTotals)) public receivers;

    /// @notice A channel went from empty (no escrow, no claims) to funded. Fires again when a
    /// closed channel is funded anew.
    event ChannelCreated(bytes32 indexed channelId, ChannelConfig config);
    /// @notice A channel that never had claims returned all its escrow to the payer.
    event ChannelClosed(bytes32 indexed channelId, ChannelConfig config);
    event Deposited(bytes32 indexed channelId, address indexed sender, uint128 amount, uint128 newBalance);
    event Claimed(bytes32 indexed channelId, address indexed sender, uint128 claimAmount, uint128 newTotalClaimed);
    event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount);
    event Refunded(bytes32 indexed channelId, address indexed sender, uint128 amount);
    event WithdrawInitiated(bytes32 indexed channelId, uint128 amount, uint40 finalizeAfter);
    event WithdrawFinalized(bytes32 indexed channelId, address indexed sender, uint128 amount);

    error InvalidChannel();
    error ZeroDeposit();
    error DepositOverflow();
    error InvalidSignature();
    error NotReceiverAuthorizer();
    error NotAuthorizedToClaim();
    error NotAuthorizedToRefund();
    error ClaimExceedsCeiling();
    error ClaimExceedsBalance();
    error WithdrawalAlreadyPending();
    error WithdrawalNotPending();
    error NotAuthorizedToFinalizeWithdraw();
    error WithdrawDelayNotElapsed();
    error NothingToWithdraw();
    error WithdrawAmountExceedsAvailable();
    error WithdrawDelayOutOfRange();
    error EmptyBatch();
    error DepositCollectionFailed();
    error InvalidCollector();
    error InvalidRefundNonce();
    error ZeroRefund();

    constructor() EIP712("x402 Batch Settlement", "1") {}

    // ---------------------------------------------------------------------------------------
    // Deposits

    /// @notice Adds `amount` to a channel, creating it if it is empty. `collector` pulls the
    /// tokens from the payer using `collectorData` (for example an EIP-3009 authorization), so
    /// anyone may submit the transaction on the payer's behalf.
    function deposit(ChannelConfig calldata config, uint128 amount, address collector, bytes calldata collectorData)
        external
        nonReentrant
    {
        if (
            config.payer == address(0) || config.receiver == address(0) || config.receiverAuthorizer == address(0)
                || config.token == address(0)
        ) revert InvalidChannel();
        if (config.withdrawDelay < MIN_WITHDRAW_DELAY || config.withdrawDelay > MAX_WITHDRAW_DELAY) {
            revert WithdrawDelayOutOfRange();
        }
        if (amount == 0) revert ZeroDeposit();
        if (collector == address(0)) revert InvalidCollector();

        bytes32 channelId = _channelId(config, _domainSeparatorV4());
        Channel storage channel = channels[channelId];
        uint128 previous = channel.balance;
        if (amount > type(uint128).max - previous) revert DepositOverflow();
        uint128 updated = previous + amount;
        // Book the deposit before handing control to the collector.
        channel.balance = updated;

        IERC20 token = IERC20(config.token);
        uint256 heldBefore = token.balanceOf(address(this));
        IDepositCollector(collector).collect(config.payer, config.token, amount, channelId, collectorData);
        // A short pull, a fee-on-transfer token or a collector that lies all end here.
        if (token.balanceOf(address(this)) != heldBefore + amount) revert DepositCollectionFailed();

        if (previous == 0 && channel.totalClaimed == 0) emit ChannelCreated(channelId, config);
        emit Deposited(channelId, msg.sender, amount, updated);
    }

    // ---------------------------------------------------------------------------------------
    // Claims and settlement

    /// @notice Records voucher claims for several channels. The caller must be the receiver or
    /// the receiver authorizer of every row's channel. Moves no tokens.
    function claim(VoucherClaim[] calldata voucherClaims) external nonReentrant {
        uint256 count = voucherClaims.length;
        if (count == 0) revert EmptyBatch();
        bytes32 separator = _domainSeparatorV4();
        for (uint256 i; i < count; ++i) {
            ChannelConfig calldata config = voucherClaims[i].voucher.channel;
            if (msg.sender != config.receiver && msg.sender != config.receiverAuthorizer) {
                revert NotAuthorizedToClaim();
            }
            _applyClaim(voucherClaims[i], _channelId(config, separator), separator);
        }
    }

    /// @notice Like `claim`, but anyone may submit it: the rows are authorized by one ClaimBatch
    /// signature of the receiver authorizer they all share.
    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature)
        external
        nonReentrant
    {
        uint256 count = voucherClaims.length;
        if (count == 0) revert EmptyBatch();
        bytes32 separator = _domainSeparatorV4();
        bytes32[] memory ids = _channelIds(voucherClaims, separator);

        address authorizer = voucherClaims[0].voucher.channel.receiverAuthorizer;
        bytes32 digest = _claimBatchDigest(voucherClaims, ids, separator);
        if (!SignatureChecker.isValidSignatureNowCalldata(authorizer, digest, authorizerSignature)) {
            revert InvalidSignature();
        }
        for (uint256 i; i < count; ++i) {
            if (voucherClaims[i].voucher.channel.receiverAuthorizer != authorizer) revert NotReceiverAuthorizer();
            _applyClaim(voucherClaims[i], ids[i], separator);
        }
    }

    /// @notice Pays `receiver` everything it claimed in `token` and was not yet paid, in one
    /// transfer. Anyone may call it; with nothing owed it does nothing.
    function settle(address receiver, address token) external nonReentrant {
        ReceiverTotals storage totals = receivers[receiver][token];
        uint128 owed = totals.totalClaimed - totals.totalSettled;
        if (owed == 0) return;
        totals.totalSettled = totals.totalClaimed;
        emit Settled(receiver, token, msg.sender, owed);
        IERC20(token).safeTransfer(receiver, owed);
    }

    // ---------------------------------------------------------------------------------------
    // Payer withdrawal

    /// @notice Starts the notice period for taking `amount` of unclaimed escrow back. Callable
    /// by the payer or the payer authorizer; one withdrawal at a time.
    /// @dev Signed but unclaimed vouchers reserve nothing: the receiver side has the notice
    /// period to claim them, and `finalizeWithdraw` only pays what is still unclaimed then.
    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        if (msg.sender != config.payer && msg.sender != config.payerAuthorizer) revert InvalidChannel();
        if (amount == 0) revert NothingToWithdraw();

        bytes32 channelId = _channelId(config, _domainSeparatorV4());
        Withdrawal storage pending = pendingWithdrawals[channelId];
        if (pending.initiatedAt != 0) revert WithdrawalAlreadyPending();
        Channel storage channel = channels[channelId];
        if (amount > channel.balance - channel.totalClaimed) revert WithdrawAmountExceedsAvailable();

        uint40 now40 = uint40(block.timestamp);
        pending.amount = amount;
        pending.initiatedAt = now40;
        emit WithdrawInitiated(channelId, amount, now40 + config.withdrawDelay);
    }

    /// @notice Ends a withdrawal whose notice period is over and sends the payer the requested
    /// amount, or less if claims made during the notice period left less unclaimed.
    function finalizeWithdraw(ChannelConfig calldata config) external nonReentrant {
        if (msg.sender != config.payer && msg.sender != config.payerAuthorizer) {
            revert NotAuthorizedToFinalizeWithdraw();
        }
        bytes32 channelId = _channelId(config, _domainSeparatorV4());
        Withdrawal storage pending = pendingWithdrawals[channelId];
        uint256 initiatedAt = pending.initiatedAt;
        if (initiatedAt == 0) revert WithdrawalNotPending();
        if (block.timestamp < initiatedAt + config.withdrawDelay) revert WithdrawDelayNotElapsed();

        Channel storage channel = channels[channelId];
        uint128 unclaimed = channel.balance - channel.totalClaimed;
        uint128 payout = pending.amount < unclaimed ? pending.amount : unclaimed;
        delete pendingWithdrawals[channelId];
        uint128 remaining = channel.balance - payout;
        channel.balance = remaining;

        emit WithdrawFinalized(channelId, msg.sender, payout);
        if (remaining == 0 && channel.totalClaimed == 0) emit ChannelClosed(channelId, config);
        if (payout != 0) IERC20(config.token).safeTransfer(config.payer, payout);
    }

    // ---------------------------------------------------------------------------------------
    // Cooperative refund

    /// @notice Returns up to `amount` of unclaimed escrow to the payer right away. Callable by
    /// the receiver or the receiver authorizer.
    function refund(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        if (msg.sender != config.receiver && msg.sender != config.receiverAuthorizer) revert NotAuthorizedToRefund();
        _refund(config, _channelId(config, _domainSeparatorV4()), amount);
    }

    /// @notice Like `refund`, but anyone may submit it with the receiver authorizer's Refund
    /// signature over (channel id, `nonce`, `amount`); `nonce` must be the current refundNonce.
    function refundWithSignature(
        ChannelConfig calldata config,
        uint128 amount,
        uint256 nonce,
        bytes calldata receiverAuthorizerSignature
    ) external nonReentrant {
        bytes32 separator = _domainSeparatorV4();
        bytes32 channelId = _channelId(config, separator);
        if (nonce != refundNonce[channelId]) revert InvalidRefundNonce();
        bytes32 digest = MessageHashUtils.toTypedDataHash(separator, _refundStructHash(channelId, nonce, amount));
        if (!SignatureChecker.isValidSignatureNowCalldata(config.receiverAuthorizer, digest, receiverAuthorizerSignature))
        {
            revert InvalidSignature();
        }
        _refund(config, channelId, amount);
    }

    // ---------------------------------------------------------------------------------------
    // Views

    /// @notice The id of the channel `config` describes: its EIP-712 digest under this
    /// contract's domain.
    function getChannelId(ChannelConfig calldata config) external view returns (bytes32) {
        return _channelId(config, _domainSeparatorV4());
    }

    /// @notice The digest a payer signs for a voucher.
    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) external view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(_domainSeparatorV4(), _voucherStructHash(channelId, maxClaimableAmount));
    }

    /// @notice The digest a receiver authorizer signs to allow a refund.
    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount) external view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(_domainSeparatorV4(), _refundStructHash(channelId, nonce, amount));
    }

    /// @notice The digest a receiver authorizer signs to allow `claimWithSignature`. Defined for
    /// an empty list too, although claims reject one.
    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) external view returns (bytes32) {
        bytes32 separator = _domainSeparatorV4();
        return _claimBatchDigest(voucherClaims, _channelIds(voucherClaims, separator), separator);
    }

    // ---------------------------------------------------------------------------------------
    // Internals

    /// @dev Raises a channel's cumulative claim to `row.totalClaimed`. Rows at or below what is
    /// already recorded are skipped without looking at them, which makes resubmitting a batch
    /// harmless.
    function _applyClaim(VoucherClaim calldata row, bytes32 channelId, bytes32 separator) private {
        Channel storage channel = channels[channelId];
        uint128 recorded = channel.totalClaimed;
        uint128 target = row.totalClaimed;
        if (target <= recorded) return;
        uint128 ceiling = row.voucher.maxClaimableAmount;
        if (target > ceiling) revert ClaimExceedsCeiling();
        if (target > channel.balance) revert ClaimExceedsBalance();

        ChannelConfig calldata config = row.voucher.channel;
        bytes32 digest = MessageHashUtils.toTypedDataHash(separator, _voucherStructHash(channelId, ceiling));
        if (config.payerAuthorizer != address(0)) {
            // A plain key: recover (low-s only) and compare.
            if (ECDSA.recoverCalldata(digest, row.signature) != config.payerAuthorizer) revert InvalidSignature();
        } else if (!SignatureChecker.isValidSignatureNowCalldata(config.payer, digest, row.signature)) {
            revert InvalidSignature();
        }

        uint128 delta = target - recorded;
        channel.totalClaimed = target;
        receivers[config.receiver][config.token].totalClaimed += delta;
        emit Claimed(channelId, msg.sender, delta, target);
    }

    /// @dev The refund both entry points share. The nonce moves first, so even a refund that
    /// finds nothing to return invalidates signatures made for the old nonce.
    function _refund(ChannelConfig calldata config, bytes32 channelId, uint128 amount) private {
        if (amount == 0) revert ZeroRefund();
        unchecked {
            ++refundNonce[channelId];
        }

        Channel storage channel = channels[channelId];
        uint128 unclaimed = channel.balance - channel.totalClaimed;
        uint128 payout = amount < unclaimed ? amount : unclaimed;
        if (payout == 0) return;
        uint128 remaining = channel.balance - payout;
        channel.balance = remaining;

        // Whatever is refunded no longer needs withdrawing.
        Withdrawal storage pending = pendingWithdrawals[channelId];
        if (pending.initiatedAt != 0) {
            if (payout >= pending.amount) delete pendingWithdrawals[channelId];
            else pending.amount -= payout;
        }

        emit Refunded(channelId, msg.sender, payout);
        if (remaining == 0 && channel.totalClaimed == 0) emit ChannelClosed(channelId, config);
        IERC20(config.token).safeTransfer(config.payer, payout);
    }

    function _channelId(ChannelConfig calldata config, bytes32 separator) private pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(separator, keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, config)));
    }

    function _channelIds(VoucherClaim[] calldata rows, bytes32 separator) private pure returns (bytes32[] memory ids) {
        ids = new bytes32[](rows.length);
        for (uint256 i; i < rows.length; ++i) {
            ids[i] = _channelId(rows[i].voucher.channel, separator);
        }
    }

    /// @dev EIP-712 encodes an array of structs as the keccak of its members' struct hashes,
    /// concatenated; an empty array therefore hashes to keccak256("").
    function _claimBatchDigest(VoucherClaim[] calldata rows, bytes32[] memory ids, bytes32 separator)
        private
        pure
        returns (bytes32)
    {
        bytes32[] memory entries = new bytes32[](rows.length);
        for (uint256 i; i < rows.length; ++i) {
            entries[i] = keccak256(
                abi.encode(CLAIM_ENTRY_TYPEHASH, ids[i], rows[i].voucher.maxClaimableAmount, rows[i].totalClaimed)
            );
        }
        bytes32 structHash = keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(abi.encodePacked(entries))));
        return MessageHashUtils.toTypedDataHash(separator, structHash);
    }

    function _voucherStructHash(bytes32 channelId, uint128 maxClaimableAmount) private pure returns (bytes32) {
        return keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount));
    }

    function _refundStructHash(bytes32 channelId, uint256 nonce, uint128 amount) private pure returns (bytes32) {
        return keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount));
    }
}
