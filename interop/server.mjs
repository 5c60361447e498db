// A stock x402 resource server: Express with the published payment middleware and an in-process
// facilitator that verifies and settles on the chain at RPC_URL. It sells one route, GET /paid,
// and is what a third-party seller built from the npm packages looks like to a paying client.
//
// Environment:
//   RPC_URL          JSON-RPC endpoint of the chain (chain id CHAIN_ID, default 1337)
//   FACILITATOR_KEY  0x-prefixed key that submits settlements and pays their gas
//   ASSET            EIP-3009 token address
//   ASSET_NAME       the token's EIP-712 domain name
//   ASSET_VERSION    the token's EIP-712 domain version
//   PRICE            price of GET /paid in the token's atomic units
//   PAY_TO           address that receives the payments
//   PORT             port on 127.0.0.1 to listen on (0 picks a free one)
//
// Once it accepts connections it prints "LISTENING <port>" on stdout.
import express from "express";
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
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
  const chainId = Number(process.env.CHAIN_ID || "1337");
  const network = `eip155:${chainId}`;
  const asset = required("ASSET");
  const price = required("PRICE");
  const payTo = required("PAY_TO");
  const port = Number(process.env.PORT || "0");

  const chain = defineChain({
    id: chainId,
    name: `Local ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcURL] } },
  });
  const account = privateKeyToAccount(required("FACILITATOR_KEY"));
  const wallet = createWalletClient({ account, chain, transport: http(rpcURL) }).extend(publicActions);

  const facilitator = new x402Facilitator();
  registerFacilitatorScheme(facilitator, {
    signer: toFacilitatorEvmSigner({ ...wallet, address: account.address }),
    networks: network,
  });

  const resourceServer = new x402ResourceServer(facilitator).register(network, new ExactEvmScheme());
  await resourceServer.initialize();

  const routes = {
    "GET /paid": {
      description: "A paid greeting",
      mimeType: "application/json",
      accepts: {
        scheme: "exact",
        network,
        payTo,
        price: {
          amount: price,
          asset,
          extra: { name: required("ASSET_NAME"), version: required("ASSET_VERSION") },
        },
        maxTimeoutSeconds: 120,
      },
    },
  };

  const app = express();
  app.use(paymentMiddleware(routes, resourceServer));
  app.get("/paid", (req, res) => {
    res.json({ message: "paid content from the stock x402 server" });
  });

  const server = app.listen(port, "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  server.on("error", (err) => {
    process.stderr.write(`listen: ${err.message}\n`);
    process.exit(1);
  });
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => server.close(() => process.exit(0)));
  }
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
