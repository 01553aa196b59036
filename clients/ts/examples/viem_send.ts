import fs from "node:fs";

import { keywardAccount } from "@keyward/client";
import { createWalletClient, defineChain, http, parseEther } from "viem";

// A viem wallet client whose account is a keyward wallet: viem fills nonce, gas and fees
// from the node, keyward decides on the transaction and signs it, viem sends it.
export async function sendWithKeyward(env: NodeJS.ProcessEnv = process.env) {
  const account = await keywardAccount({
    url: env.KEYWARD_URL!, // https://keyward.internal:8443
    walletId: env.KEYWARD_WALLET!,
    tls: {
      ca: fs.readFileSync(env.KEYWARD_CA!),
      cert: fs.readFileSync(env.KEYWARD_CERT!),
      key: fs.readFileSync(env.KEYWARD_KEY!),
    },
  });
  const chain = defineChain({
    id: Number(env.CHAIN_ID),
    name: "my chain",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [env.RPC_URL!] } },
  });
  const wallet = createWalletClient({ account, chain, transport: http() });
  const hash = await wallet.sendTransaction({
    to: "0x3535353535353535353535353535353535353535",
    value: parseEther("0.001"),
  });
  return { account, hash };
}
