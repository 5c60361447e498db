// Writes vectors.json: batch-settlement hashes, signatures and wire payloads produced by the
// published npm packages (@x402/evm 2.27.0 client and server code, viem), for the Go tests.
//
// Regenerate (needs the interop packages installed: cd interop && npm ci):
//
//   node scheme/batch/testdata/gen-vectors.mjs            (from the repository root)
//
// Output is deterministic: the clock and the random source the npm code uses are fixed below,
// and viem signs with RFC 6979. Keys are accounts of the public test mnemonic
// "test test test test test test test test test test test junk"; they hold nothing of value.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const interopDir = process.env.INTEROP_DIR ?? fileURLToPath(new URL("../../../interop/", import.meta.url));
const requireFromInterop = createRequire(`${interopDir}/package.json`);
const load = async name => import(pathToFileURL(requireFromInterop.resolve(name)).href);

// Fixed clock and random source, installed before the npm code runs.
const NOW_MS = 1_800_000_000_000;
Date.now = () => NOW_MS;
let draws = 0;
const realCrypto = globalThis.crypto;
const fakeRandom = arr => {
  draws += 1;
  for (let i = 0; i < arr.length; i++) arr[i] = (draws * 37 + i * 11) & 0xff;
  return arr;
};
Object.defineProperty(globalThis, "crypto", {
  configurable: true,
  value: new Proxy(realCrypto, {
    get(target, prop) {
      if (prop === "getRandomValues") return fakeRandom;
      const v = target[prop];
      return typeof v === "function" ? v.bind(target) : v;
    },
  }),
});

const viem = await load("viem");
const { privateKeyToAccount } = await load("viem/accounts");
const evm = await load("@x402/evm");
const bsClient = await load("@x402/evm/batch-settlement/client");
const bsServer = await load("@x402/evm/batch-settlement/server");
const core = await load("@x402/core/client");

// Accounts 1, 2, 3 and 4 of the public test mnemonic.
const KEYS = {
  payer: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  receiverAuthorizer: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  voucherSigner: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  secondPayer: "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
};
const payer = privateKeyToAccount(KEYS.payer);
const authorizer = privateKeyToAccount(KEYS.receiverAuthorizer);
const voucherSigner = privateKeyToAccount(KEYS.voucherSigner);
const secondPayer = privateKeyToAccount(KEYS.secondPayer);

const NETWORK = "eip155:1337";
const CHAIN_ID = 1337;
const TOKEN = viem.getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");
const PAY_TO = viem.getAddress("0xa0ee7a142d267c1f36714e4a8f75612f20a79720");
const TOKEN_NAME = "USD Coin";
const TOKEN_VERSION = "2";

const settlementDomain = chainId => ({
  ...evm.BATCH_SETTLEMENT_DOMAIN,
  chainId,
  verifyingContract: viem.getAddress(evm.BATCH_SETTLEMENT_ADDRESS),
});
// Type definitions the npm package does not export, written from the binding spec.
const receiveTypes = {
  ReceiveWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};
const permit2Types = {
  PermitWitnessTransferFrom: [
    { name: "permitted", type: "TokenPermissions" },
    { name: "spender", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
    { name: "witness", type: "DepositWitness" },
  ],
  TokenPermissions: [
    { name: "token", type: "address" },
    { name: "amount", type: "uint256" },
  ],
  DepositWitness: [{ name: "channelId", type: "bytes32" }],
};

const out = { generator: "@x402/evm 2.27.0 + viem " + requireFromInterop("viem/package.json").version, nowMs: NOW_MS, keys: KEYS };

// 1. Channel ids.
const zero = "0x0000000000000000000000000000000000000000";
const configs = [
  { network: NETWORK, config: { payer: payer.address, payerAuthorizer: payer.address, receiver: PAY_TO, receiverAuthorizer: authorizer.address, token: TOKEN, withdrawDelay: 900, salt: viem.pad("0x0", { size: 32 }) } },
  { network: NETWORK, config: { payer: payer.address, payerAuthorizer: voucherSigner.address, receiver: PAY_TO, receiverAuthorizer: authorizer.address, token: TOKEN, withdrawDelay: 2592000, salt: viem.pad("0x01", { size: 32 }) } },
  { network: "eip155:84532", config: { payer: payer.address, payerAuthorizer: zero, receiver: PAY_TO, receiverAuthorizer: authorizer.address, token: TOKEN, withdrawDelay: 1099511627775, salt: viem.keccak256("0x1234") } },
];
out.channels = configs.map(c => ({ ...c, channelId: bsClient.computeChannelId(c.config, c.network) }));

// 2. Vouchers, signed by the npm client's own signVoucher.
out.vouchers = [];
for (const [i, [signerName, account, amount]] of [
  ["payer", payer, "1000"],
  ["voucherSigner", voucherSigner, "340282366920938463463374607431768211455"],
  ["payer", payer, "0"],
].entries()) {
  const ch = out.channels[i];
  const v = await bsClient.signVoucher(account, ch.channelId, amount, ch.network);
  const digest = viem.hashTypedData({
    domain: settlementDomain(Number(ch.network.split(":")[1])),
    types: evm.voucherTypes,
    primaryType: "Voucher",
    message: { channelId: ch.channelId, maxClaimableAmount: BigInt(amount) },
  });
  out.vouchers.push({ network: ch.network, channelId: ch.channelId, maxClaimableAmount: amount, digest, signer: signerName, signature: v.signature });
}

// 3. Deposit authorizations (ERC-3009 ReceiveWithAuthorization to the collector).
out.depositAuthorizations = [];
for (const [channel, value, salt, validBefore] of [
  [out.channels[0], "10000", viem.keccak256("0x01"), "1800000300"],
  [out.channels[1], "340282366920938463463374607431768211455", viem.pad("0x0", { size: 32 }), "115792089237316195423570985008687907853269984665640564039457584007913129639935"],
]) {
  const nonce = viem.keccak256(viem.encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [channel.channelId, BigInt(salt)]));
  const typed = {
    domain: { name: TOKEN_NAME, version: TOKEN_VERSION, chainId: CHAIN_ID, verifyingContract: TOKEN },
    types: receiveTypes,
    primaryType: "ReceiveWithAuthorization",
    message: { from: payer.address, to: viem.getAddress(evm.ERC3009_DEPOSIT_COLLECTOR_ADDRESS), value: BigInt(value), validAfter: 0n, validBefore: BigInt(validBefore), nonce },
  };
  out.depositAuthorizations.push({
    network: NETWORK, tokenName: TOKEN_NAME, tokenVersion: TOKEN_VERSION, token: TOKEN, from: payer.address,
    channelId: channel.channelId, value, validAfter: "0", validBefore, salt, nonce,
    digest: viem.hashTypedData(typed), signature: await payer.signTypedData(typed),
  });
}

// 4. Claim batches and refunds, signed by the receiver authorizer.
out.claimBatches = [];
for (const entries of [
  [],
  [{ channelId: out.channels[0].channelId, maxClaimableAmount: "5000", totalClaimed: "4200" }],
  out.channels.map((c, i) => ({ channelId: c.channelId, maxClaimableAmount: String(1000 * (i + 1)), totalClaimed: String(900 * (i + 1)) })),
]) {
  const typed = {
    domain: settlementDomain(CHAIN_ID), types: evm.claimBatchTypes, primaryType: "ClaimBatch",
    message: { claims: entries.map(e => ({ channelId: e.channelId, maxClaimableAmount: BigInt(e.maxClaimableAmount), totalClaimed: BigInt(e.totalClaimed) })) },
  };
  out.claimBatches.push({ network: NETWORK, entries, digest: viem.hashTypedData(typed), signature: await authorizer.signTypedData(typed) });
}
out.refunds = [];
for (const [nonce, amount] of [["0", "3000"], ["115792089237316195423570985008687907853269984665640564039457584007913129639935", "1"]]) {
  const typed = {
    domain: settlementDomain(CHAIN_ID), types: evm.refundTypes, primaryType: "Refund",
    message: { channelId: out.channels[0].channelId, nonce: BigInt(nonce), amount: BigInt(amount) },
  };
  out.refunds.push({ network: NETWORK, channelId: out.channels[0].channelId, nonce, amount, digest: viem.hashTypedData(typed), signature: await authorizer.signTypedData(typed) });
}

// 5. Permit2 witness transfer.
{
  const typed = {
    domain: { name: "Permit2", chainId: CHAIN_ID, verifyingContract: viem.getAddress(evm.PERMIT2_ADDRESS) },
    types: permit2Types, primaryType: "PermitWitnessTransferFrom",
    message: { permitted: { token: TOKEN, amount: 10000n }, spender: viem.getAddress("0x4020425FAf3B746C082C2f942b4E5159887B0005"), nonce: 77n, deadline: 1800000300n, witness: { channelId: out.channels[0].channelId } },
  };
  out.permit2 = [{ network: NETWORK, token: TOKEN, amount: "10000", spender: typed.message.spender, nonce: "77", deadline: "1800000300", channelId: out.channels[0].channelId, digest: viem.hashTypedData(typed), signature: await payer.signTypedData(typed) }];
}

// 6. The stock server's requirement and the stock client's payloads for it.
const authorizerSigner = { address: authorizer.address, signTypedData: p => authorizer.signTypedData(p) };
const server = new bsServer.BatchSettlementEvmScheme(PAY_TO, { receiverAuthorizerSigner: authorizerSigner, withdrawDelay: 900 });
const base = { scheme: "batch-settlement", network: NETWORK, amount: "1000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: TOKEN_NAME, version: TOKEN_VERSION } };
const requirements = await server.enhancePaymentRequirements(base, { x402Version: 2, scheme: "batch-settlement", network: NETWORK }, []);
const exactOffer = { scheme: "exact", network: NETWORK, amount: "1000", asset: TOKEN, payTo: PAY_TO, maxTimeoutSeconds: 300, extra: { name: TOKEN_NAME, version: TOKEN_VERSION } };
const resource = { url: "http://127.0.0.1:4031/paid", description: "vector", mimeType: "application/json" };
out.requirements = requirements;

function stockClient(account, storage, options = {}) {
  const scheme = new bsClient.BatchSettlementEvmScheme(account, { storage, ...options });
  const client = new core.x402Client().register(NETWORK, scheme);
  client.setSpendControls?.({ allowedAssets: [{ network: NETWORK, asset: TOKEN, maxAmountPerPayment: "1000000" }] });
  return { scheme, client, http: new core.x402HTTPClient(client) };
}
async function pay(c, req) {
  const paymentPayload = await c.client.createPaymentPayload({ x402Version: 2, resource, accepts: [req] });
  const headers = c.http.encodePaymentSignatureHeader(paymentPayload);
  return { paymentPayload, header: headers["PAYMENT-SIGNATURE"] };
}
const record = (p, extra = {}) => ({ ...extra, payloadJSON: JSON.stringify(p.paymentPayload.payload), header: p.header });

const storage = new bsClient.InMemoryClientChannelStorage();
const alice = stockClient(payer, storage);
const aliceConfig = alice.scheme.buildChannelConfig(requirements);
const aliceId = bsClient.computeChannelId(aliceConfig, NETWORK);
const deposit = await pay(alice, requirements);
await storage.set(aliceId.toLowerCase(), { balance: "10000", chargedCumulativeAmount: "1000" });
const voucher = await pay(alice, requirements);
const permit2Req = { ...requirements, extra: { ...requirements.extra, assetTransferMethod: "permit2" } };
const permit2Deposit = await pay(stockClient(payer, new bsClient.InMemoryClientChannelStorage()), permit2Req);
const bobStorage = new bsClient.InMemoryClientChannelStorage();
const bob = stockClient(secondPayer, bobStorage, { voucherSigner, salt: viem.pad("0x07", { size: 32 }) });
const bobDeposit = await pay(bob, requirements);
out.payloads = {
  deposit: record(deposit),
  voucher: record(voucher),
  permit2Deposit: record(permit2Deposit, { requirements: permit2Req }),
  secondDeposit: record(bobDeposit),
};

// 7. Drive the stock server's hooks through deposit, voucher, replay, claim, settle and refund.
const hooks = server.schemeHooks;
const txHash = n => viem.pad(viem.toHex(n), { size: 32 });
async function serveDeposit(pp, balance) {
  if (await hooks.onBeforeVerify({ paymentPayload: pp, requirements })) throw new Error("deposit refused before verify");
  const p = pp.payload;
  const verify = { isValid: true, payer: p.channelConfig.payer, extra: { channelId: p.voucher.channelId, balance: "0", totalClaimed: "0", withdrawRequestedAt: 0, refundNonce: "0" } };
  if (await hooks.onAfterVerify({ paymentPayload: pp, requirements, result: verify })) throw new Error("deposit refused after verify");
  if (await hooks.onBeforeSettle({ paymentPayload: pp, requirements })) throw new Error("deposit skipped settle");
  const result = {
    success: true, transaction: txHash(1), network: NETWORK, payer: p.channelConfig.payer, amount: p.deposit.amount,
    extra: { channelState: { channelId: p.voucher.channelId, balance, totalClaimed: "0", withdrawRequestedAt: 0, refundNonce: "0" } },
  };
  await hooks.onAfterSettle({ paymentPayload: pp, requirements, result });
  const enrichment = await server.enrichSettlementResponse({ paymentPayload: pp, requirements, result });
  return { ...result, extra: { ...result.extra, ...enrichment, channelState: { ...result.extra.channelState, ...enrichment.channelState } } };
}
out.server = {};
out.server.depositResponse = await serveDeposit(deposit.paymentPayload, "10000");
await serveDeposit(bobDeposit.paymentPayload, "10000");

const local = await hooks.onBeforeVerify({ paymentPayload: voucher.paymentPayload, requirements });
if (!local?.skip) throw new Error("voucher was not verified locally");
out.server.voucherVerify = local.result;
await hooks.onAfterVerify({ paymentPayload: voucher.paymentPayload, requirements, result: local.result });
const settled = await hooks.onBeforeSettle({ paymentPayload: voucher.paymentPayload, requirements });
if (!settled?.skip) throw new Error("voucher settle was not skipped");
out.server.voucherResponse = settled.result;

const replay = structuredClone(voucher.paymentPayload);
const refused = await hooks.onBeforeVerify({ paymentPayload: replay, requirements });
const accepts = [structuredClone(requirements), structuredClone(exactOffer)];
await server.enrichPaymentRequiredResponse({ error: refused.reason, paymentPayload: replay, requirements: accepts });
out.server.corrective = { error: refused.reason, accepts };

const captured = [];
const facilitator = {
  settle: async (paymentPayload, reqs) => {
    captured.push({ paymentPayload, requirements: reqs });
    return { success: true, transaction: txHash(captured.length + 1), network: NETWORK, amount: "0" };
  },
};
const manager = server.createChannelManager(facilitator, NETWORK, TOKEN);
await manager.claim();
await manager.settle();
out.server.claimPayloadJSON = JSON.stringify(captured[0].paymentPayload.payload);
out.server.claimEnvelope = captured[0].paymentPayload;
out.server.settlePayloadJSON = JSON.stringify(captured[1].paymentPayload.payload);

const refundVoucher = await bsClient.signVoucher(payer, aliceId, "2000", NETWORK);
const refundPayload = {
  x402Version: 2, accepted: requirements, resource,
  payload: { type: "refund", channelConfig: aliceConfig, voucher: refundVoucher, amount: "3000" },
};
if (await hooks.onBeforeVerify({ paymentPayload: refundPayload, requirements })) throw new Error("refund refused");
await hooks.onAfterVerify({
  paymentPayload: refundPayload, requirements,
  result: { isValid: true, payer: payer.address, extra: { channelId: aliceId, balance: "10000", totalClaimed: "2000", withdrawRequestedAt: 0, refundNonce: "0" } },
});
const enrichment = await server.enrichSettlementPayload({ paymentPayload: refundPayload, requirements });
out.payloads.refund = { payloadJSON: JSON.stringify(refundPayload.payload) };
out.server.refundSettlePayloadJSON = JSON.stringify({ ...refundPayload.payload, ...enrichment });

const target = fileURLToPath(new URL("./vectors.json", import.meta.url));
writeFileSync(target, JSON.stringify(out, null, 2) + "\n");
console.log(`wrote ${target}`);
