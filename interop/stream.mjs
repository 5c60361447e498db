// A stock x402 client reading a paid event stream: the published npm packages and nothing else.
// It pays one request with wrapFetchWithPayment, reads the body as it arrives, and prints
// {status, paymentResponse, events: [{ms, data}]} as a single JSON line, where ms is when each
// Server-Sent Event's data arrived, counted from the request.
//
// Environment: URL, PRIVATE_KEY, NETWORK, ASSET, MAX_AMOUNT as for pay.mjs; SCHEME "exact"
// (default) or "batch-settlement" (then RPC_URL and DEPOSIT as for channel.mjs: the first request
// opens a channel, later ones pay with vouchers); COUNT requests one after the other (default 1), each
// reported in runs, the last one also at the top level.
import { wrapFetchWithPayment, decodePaymentResponseHeader, x402Client } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
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
  const account = privateKeyToAccount(required("PRIVATE_KEY"));
  const client = new x402Client();
  if ((process.env.SCHEME || "exact") === "batch-settlement") {
    const options = { storage: new InMemoryClientChannelStorage(), rpcUrl: required("RPC_URL") };
    if (process.env.DEPOSIT) {
      const deposit = BigInt(process.env.DEPOSIT);
      options.depositStrategy = () => deposit;
    }
    client.register(network, new BatchSettlementEvmScheme(account, options));
  } else {
    registerExactEvmScheme(client, { signer: account, networks: [network] });
  }
  client.setSpendControls({
    allowedAssets: [{ network, asset, maxAmountPerPayment: required("MAX_AMOUNT") }],
  });
  const payingFetch = wrapFetchWithPayment(fetch, client);

  const runs = [];
  for (let i = 0; i < Number(process.env.COUNT || "1"); i++) {
    runs.push(await readStream(payingFetch, url));
  }
  process.stdout.write(JSON.stringify({ ...runs[runs.length - 1], runs }) + "\n");
}

// readStream pays for url and reads its events as they arrive.
async function readStream(payingFetch, url) {
  const started = performance.now();
  const res = await payingFetch(url);
  const header = res.headers.get("PAYMENT-RESPONSE");
  const paymentResponse = header ? decodePaymentResponseHeader(header) : null;
  const events = [];
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of res.body) {
    pending += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      events.push({ ms: performance.now() - started, data });
    }
  }
  return { status: res.status, paymentResponse, events };
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
