// A stock x402 batch-settlement client: the published npm packages and nothing else. It opens an
// escrow channel with its first payment (a deposit plus a voucher), pays COUNT requests in all
// through the channel, and prints one JSON line: {results: [{status, body, paymentResponse}]}.
//
// Environment:
//   URL          the resource to fetch
//   PRIVATE_KEY  the payer's 0x-prefixed secp256k1 key
//   NETWORK      CAIP-2 network, e.g. eip155:1337
//   ASSET        token address the client agrees to pay with
//   MAX_AMOUNT   largest single payment (deposits included), in atomic units
//   RPC_URL      the chain's JSON-RPC endpoint, for channel recovery reads
//   COUNT        number of requests (default 1)
//   DEPOSIT      optional deposit size in atomic units (default: the server's minDeposit)
//   REFUND       set to 1 to ask for the unspent deposit back afterwards (prints refund)
import { wrapFetchWithPayment, decodePaymentResponseHeader, x402Client } from "@x402/fetch";
import { BatchSettlementEvmScheme, InMemoryClientChannelStorage } from "@x402/evm/batch-settlement/client";
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
  const network = required("NETWORK");
  const asset = required("ASSET");
  const maxAmount = required("MAX_AMOUNT");
  const count = Number(process.env.COUNT || "1");
  const options = { storage: new InMemoryClientChannelStorage(), rpcUrl: required("RPC_URL") };
  if (process.env.DEPOSIT) {
    const deposit = BigInt(process.env.DEPOSIT);
    options.depositStrategy = () => deposit;
  }
  const scheme = new BatchSettlementEvmScheme(privateKeyToAccount(required("PRIVATE_KEY")), options);
  const client = new x402Client().register(network, scheme);
  client.setSpendControls({ allowedAssets: [{ network, asset, maxAmountPerPayment: maxAmount }] });
  const payingFetch = wrapFetchWithPayment(fetch, client);

  const results = [];
  for (let i = 0; i < count; i++) {
    const res = await payingFetch(url);
    const header = res.headers.get("PAYMENT-RESPONSE");
    results.push({
      status: res.status,
      body: await res.text(),
      paymentResponse: header ? decodePaymentResponseHeader(header) : null,
    });
  }
  const refund = process.env.REFUND === "1" ? await scheme.refund(url) : null;
  process.stdout.write(JSON.stringify({ results, refund }) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
