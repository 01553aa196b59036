import fs from "node:fs";

import { keywardSolanaSigner } from "@keyward/client";
import { getTransferSolInstruction } from "@solana-program/system";
import {
  address,
  appendTransactionMessageInstruction,
  createTransactionMessage,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  type Blockhash,
} from "@solana/kit";

// A transfer built with @solana/kit, signed by a keyward wallet (keyward's policy decodes
// the System Program transfer: recipient, lamports). `latestBlockhash` comes from
// `rpc.getLatestBlockhash().send()`; send the result with `sendAndConfirmTransaction`.
export async function signTransfer(
  latestBlockhash: { blockhash: Blockhash; lastValidBlockHeight: bigint },
  env: NodeJS.ProcessEnv = process.env,
) {
  const signer = await keywardSolanaSigner({
    url: env.KEYWARD_URL!, // https://keyward.internal:8443
    walletId: env.KEYWARD_SOLANA_WALLET!,
    tls: {
      ca: fs.readFileSync(env.KEYWARD_CA!),
      cert: fs.readFileSync(env.KEYWARD_CERT!),
      key: fs.readFileSync(env.KEYWARD_KEY!),
    },
  });
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(signer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(latestBlockhash, m),
    (m) =>
      appendTransactionMessageInstruction(
        getTransferSolInstruction({
          source: signer,
          destination: address("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"),
          amount: 1_000_000n,
        }),
        m,
      ),
  );
  const signed = await signTransactionMessageWithSigners(message);
  return { signer, signed };
}
