// The official x402 TypeScript stack as `make bench` measures it: Express with the published
// payment middleware and an in-process facilitator that verifies and settles `exact` payments on
// the chain at RPC_URL. It sells GET ROUTE_PATH, answering BODY as JSON once paid.
//
// The facilitator's wallet uses viem's nonce manager, so concurrent settlements get consecutive
// nonces instead of colliding, and polls for receipts every POLL_MS milliseconds (viem asks for
// the receipt once at once, then again on every new block it sees at that pace). This is the
// setup a seller following the x402 documentation would run, tuned for a local chain.
//
// Environment:
//   RPC_URL              JSON-RPC endpoint of the chain
//   CHAIN_ID             the chain's id
//   FACILITATOR_KEY      0x-prefixed key that submits settlements and pays their gas
//   ASSET                EIP-3009 token address
//   ASSET_NAME           the token's EIP-712 domain name
//   ASSET_VERSION        the token's EIP-712 domain version
//   PRICE                price of the route in the token's atomic units
//   PAY_TO               address that receives the payments
//   MAX_TIMEOUT_SECONDS  maxTimeoutSeconds of the offer
//   ROUTE_PATH           the paid path (GET)
//   BODY                 the JSON text the route answers
//   POLL_MS              receipt polling interval in milliseconds (default 50)
//   PORT                 port on 127.0.0.1 to listen on (0 picks a free one)
//
// Once it accepts connections it prints "LISTENING <port>" on stdout. SIGTERM or SIGINT, or its
// standard input closing (the benchmark that started it went away), stops it.
import express from "express";
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { nonceManager, privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { x402ResourceServer } from "@x402/core/server";
import { paymentMiddleware } from "@x402/express";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme as registerFacilitatorScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmScheme } from "@x402/evm/exact/server";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

async function main() {
  const rpcURL = required("RPC_URL");
  const chainId = Number(required("CHAIN_ID"));
  const network = `eip155:${chainId}`;
  const routePath = required("ROUTE_PATH");
  const body = JSON.parse(required("BODY"));
  const pollingInterval = Number(process.env.POLL_MS || "50");

  const chain = defineChain({
    id: chainId,
    name: `Local ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcURL] } },
  });
  const account = privateKeyToAccount(required("FACILITATOR_KEY"), { nonceManager });
  const wallet = createWalletClient({ account, chain, transport: http(rpcURL), pollingInterval }).extend(publicActions);

  const facilitator = new x402Facilitator();
  registerFacilitatorScheme(facilitator, {
    signer: toFacilitatorEvmSigner({ ...wallet, address: account.address }),
    networks: network,
  });
  const resourceServer = new x402ResourceServer(facilitator).register(network, new ExactEvmScheme());
  await resourceServer.initialize();

  const routes = {
    [`GET ${routePath}`]: {
      description: "A paid quote",
      mimeType: "application/json",
      accepts: {
        scheme: "exact",
        network,
        payTo: required("PAY_TO"),
        price: {
          amount: required("PRICE"),
          asset: required("ASSET"),
          extra: { name: required("ASSET_NAME"), version: required("ASSET_VERSION") },
        },
        maxTimeoutSeconds: Number(required("MAX_TIMEOUT_SECONDS")),
      },
    },
  };

  const app = express();
  app.use(paymentMiddleware(routes, resourceServer));
  app.get(routePath, (req, res) => {
    res.json(body);
  });

  const server = app.listen(Number(process.env.PORT || "0"), "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  server.keepAliveTimeout = 60_000;
  server.on("error", (err) => {
    process.stderr.write(`listen: ${err.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, stop);
  }
  process.stdin.on("end", stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
