// The reference side of the differential verification test (diffverify_test.go): every payment it
// is given goes through what a stock x402 seller runs before it serves a paid request, and the
// verdict is printed. Nothing in here knows about Payper.
//
// For each case: the PAYMENT-SIGNATURE header is decoded as @x402/core's HTTP server decodes it,
// the payer's `accepted` is matched against the one offer with x402ResourceServer's own matching,
// and the payment is verified by an in-process x402Facilitator with @x402/evm's exact scheme
// registered, which reads the chain at RPC_URL (eth_getCode, the eth_call simulation of
// transferWithAuthorization and its Multicall3 diagnosis). Nothing is settled.
//
// The facilitator reads the time with Date.now() and has no clock to inject, so Date.now is
// frozen at `now` (seconds) for the whole run: verdicts at the edges of a time window are then
// the same on every run.
//
// Input (stdin, JSON):  {rpcURL, chainId, now, facilitatorKey, cases: [{name, header, offer}]}
// Output (stdout, JSON): [{name, verdict, detail}], verdict one of
//   "accept"            the seller would run the handler
//   "reject:<reason>"   refused with that reason code
//   "malformed"         the header does not decode; the seller treats it as no payment
//   "error"             the SDK threw instead of answering (detail holds the message)
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { decodePaymentSignatureHeader } from "@x402/core/http";
import { x402ResourceServer } from "@x402/core/server";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmScheme } from "@x402/evm/exact/server";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf-8"));
}

function message(err) {
  return err instanceof Error ? err.message : String(err);
}

async function verdictOf(resourceServer, facilitator, c) {
  let payload;
  try {
    payload = decodePaymentSignatureHeader(c.header);
  } catch (err) {
    return { verdict: "malformed", detail: message(err) };
  }
  let matching;
  try {
    matching = resourceServer.findMatchingRequirements([c.offer], payload);
  } catch (err) {
    return { verdict: "error", detail: message(err) };
  }
  if (!matching) {
    return { verdict: "reject:no_matching_payment_requirements", detail: "" };
  }
  try {
    const res = await facilitator.verify(payload, matching);
    if (res.isValid) {
      return { verdict: "accept", detail: "" };
    }
    return { verdict: `reject:${res.invalidReason}`, detail: res.invalidMessage || "" };
  } catch (err) {
    return { verdict: "error", detail: message(err) };
  }
}

async function main() {
  const input = await readStdin();
  const frozen = Number(input.now) * 1000;
  Date.now = () => frozen;

  const chain = defineChain({
    id: input.chainId,
    name: `Local ${input.chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [input.rpcURL] } },
  });
  const account = privateKeyToAccount(input.facilitatorKey);
  const wallet = createWalletClient({ account, chain, transport: http(input.rpcURL) }).extend(publicActions);
  const network = `eip155:${input.chainId}`;

  const facilitator = new x402Facilitator();
  registerExactEvmScheme(facilitator, {
    signer: toFacilitatorEvmSigner({ ...wallet, address: account.address }),
    networks: network,
  });
  const resourceServer = new x402ResourceServer(facilitator).register(network, new ExactEvmScheme());
  await resourceServer.initialize();

  const out = [];
  // One at a time: the facilitator caches what it learnt about the asset, and a run must not
  // depend on which of two concurrent cases asked first.
  for (const c of input.cases) {
    out.push({ name: c.name, ...(await verdictOf(resourceServer, facilitator, c)) });
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
