import {
  type Address,
  type MessagePartialSigner,
  type SignableMessage,
  type SignatureBytes,
  type SignatureDictionary,
  type Transaction,
  type TransactionPartialSigner,
  address as toAddress,
  getBase58Encoder,
  getBase64EncodedWireTransaction,
  getPublicKeyFromAddress,
  verifySignature,
} from "@solana/kit";

import { KeywardClient, type KeywardTls } from "./client.js";
import { KeywardTransportError } from "./errors.js";

export interface KeywardSolanaSignerOptions {
  /** `https://host:port` of keyward's signing API. */
  url: string;
  tls: KeywardTls;
  /** The Solana wallet's id in keyward. */
  walletId: string;
  /** A client to share (its connections); else one is made from url and tls. */
  client?: KeywardClient;
}

export type KeywardSolanaSigner = TransactionPartialSigner & MessagePartialSigner;

/**
 * A Solana wallet of keyward as an `@solana/kit` `TransactionPartialSigner` and
 * `MessagePartialSigner` (use it with `signTransactionMessageWithSigners`). Transactions
 * go to `solana/transaction`, where keyward's policy decodes their instructions; messages
 * to `solana/message` (keyward refuses message bytes that are a transaction). Each
 * signature is verified here over the bytes this client sent before it is returned.
 */
export async function keywardSolanaSigner(opts: KeywardSolanaSignerOptions): Promise<KeywardSolanaSigner> {
  const client = opts.client ?? new KeywardClient({ url: opts.url, tls: opts.tls });
  const wallet = await client.wallet(opts.walletId);
  if (wallet.chain !== "solana" || !wallet.address) {
    throw new TypeError(`keywardSolanaSigner: wallet ${wallet.id} is not a Solana wallet`);
  }
  const addr: Address = toAddress(wallet.address);
  const publicKey = await getPublicKeyFromAddress(addr);
  const b58 = getBase58Encoder();

  const checked = async (answer: Record<string, unknown>, signed: Uint8Array): Promise<SignatureDictionary> => {
    const sig = new Uint8Array(b58.encode(String(answer.signature))) as SignatureBytes;
    if (sig.length !== 64 || !(await verifySignature(publicKey, sig, signed))) {
      throw new KeywardTransportError("answer", "keyward's signature does not verify for the wallet over these bytes");
    }
    return Object.freeze({ [addr]: sig }) as SignatureDictionary;
  };

  return Object.freeze({
    address: addr,
    async signTransactions(transactions: readonly Transaction[]): Promise<readonly SignatureDictionary[]> {
      const out: SignatureDictionary[] = [];
      for (const tx of transactions) {
        const answer = await client.sign(wallet.id, "solana/transaction", {
          transaction: getBase64EncodedWireTransaction(tx),
        });
        out.push(await checked(answer, new Uint8Array(tx.messageBytes)));
      }
      return out;
    },
    async signMessages(messages: readonly SignableMessage[]): Promise<readonly SignatureDictionary[]> {
      const out: SignatureDictionary[] = [];
      for (const m of messages) {
        const answer = await client.sign(wallet.id, "solana/message", {
          message: Buffer.from(m.content).toString("base64"),
          encoding: "base64",
        });
        out.push(await checked(answer, m.content));
      }
      return out;
    },
  });
}
