// A stock x402 client: the published npm packages and nothing else. It pays one request and
// prints {status, body, paymentResponse} as a single JSON line, so a test in any language can
// drive it. It knows nothing about the server it talks to beyond what the environment says.
//
// Environment:
//   URL          the resource to fetch
//   PRIVATE_KEY  the payer's 0x-prefixed secp256k1 key
//   NETWORK      CAIP-2 network to pay on, e.g. eip155:1337
//   ASSET        token address the client agrees to pay with
//   MAX_AMOUNT   largest single payment, in the token's atomic units
//   METHOD       optional HTTP method (default GET)
//   BODY         optional request body, sent as application/json
//   PAYMENT_ID   optional x402 payment-identifier to send, when the server declares the
//                extension (added with the reference's own appendPaymentIdentifierToExtensions)
import { wrapFetchWithPayment, decodePaymentResponseHeader, x402Client } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { appendPaymentIdentifierToExtensions } from "@x402/extensions/payment-identifier";
import { privateKeyToAccount } from "viem/accounts";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

async function main() {
  const url = required("URL");
  const key = required("PRIVATE_KEY");
  const network = required("NETWORK");
  const asset = required("ASSET");
  const maxAmount = required("MAX_AMOUNT");
  const method = process.env.METHOD || "GET";
  const body = process.env.BODY;

  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(key), networks: [network] });
  // By default the client only pays well-known stablecoins; a local token must be allowed
  // explicitly, with its own cap.
  client.setSpendControls({
    allowedAssets: [{ network, asset, maxAmountPerPayment: maxAmount }],
  });

  const paymentId = process.env.PAYMENT_ID;
  if (paymentId) {
    // The declared extensions are what the client echoes in its payment; the helper adds info.id.
    client.onBeforePaymentCreation(async ({ paymentRequired }) => {
      if (paymentRequired.extensions) {
        appendPaymentIdentifierToExtensions(paymentRequired.extensions, paymentId);
      }
    });
  }

  const payingFetch = wrapFetchWithPayment(fetch, client);
  const init = { method };
  if (body !== undefined) {
    init.body = body;
    init.headers = { "Content-Type": "application/json" };
  }
  const res = await payingFetch(url, init);

  const header = res.headers.get("PAYMENT-RESPONSE");
  const paymentResponse = header ? decodePaymentResponseHeader(header) : null;
  const text = await res.text();
  process.stdout.write(JSON.stringify({ status: res.status, body: text, paymentResponse }) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
