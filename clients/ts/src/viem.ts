import {
  type Address,
  type Hex,
  type LocalAccount,
  type SerializeTransactionFn,
  type SignableMessage,
  type TransactionSerializable,
  type TypedDataDefinition,
  UserRejectedRequestError,
  getAddress,
  getTypesForEIP712Domain,
  hashMessage,
  hashTypedData,
  keccak256,
  numberToHex,
  serializeTransaction,
  serializeTypedData,
  stringToHex,
  toHex,
} from "viem";
import { toAccount } from "viem/accounts";

import { KeywardClient, type KeywardTls } from "./client.js";
import { KeywardError, KeywardTransportError } from "./errors.js";

export interface KeywardAccountOptions {
  /** `https://host:port` of keyward's signing API. */
  url: string;
  tls: KeywardTls;
  /** The wallet's id in keyward, or its address (looked up among the client's wallets). */
  walletId?: string;
  address?: Address;
  /** A client to share (its connections); else one is made from url and tls. */
  client?: KeywardClient;
}

/**
 * A viem `LocalAccount` whose key stays in keyward: `signMessage`, `signTypedData` and
 * `signTransaction` send keyward the message, the typed data and the transaction fields
 * (never a bare hash), so keyward's policy decides on what is signed. Every signature is
 * checked here against the digest viem computes itself. A policy refusal is thrown as
 * viem's `UserRejectedRequestError` whose `cause` is the `KeywardError` (code, rule,
 * auditId); other refusals as `KeywardError`.
 */
export async function keywardAccount(opts: KeywardAccountOptions): Promise<LocalAccount> {
  const client = opts.client ?? new KeywardClient({ url: opts.url, tls: opts.tls });
  const wallet =
    opts.walletId !== undefined
      ? await client.wallet(opts.walletId)
      : opts.address !== undefined
        ? await client.walletByAddress(opts.address)
        : undefined;
  if (!wallet) throw new TypeError("keywardAccount: walletId or address is required");
  if (wallet.chain !== "evm" || !wallet.address) {
    throw new TypeError(`keywardAccount: wallet ${wallet.id} is not an EVM wallet`);
  }
  const address = getAddress(wallet.address);
  if (opts.address !== undefined && getAddress(opts.address) !== address) {
    throw new TypeError(`keywardAccount: wallet ${wallet.id} holds ${address}, not ${opts.address}`);
  }
  const id = wallet.id;

  const sign = async (route: string, body: unknown): Promise<Record<string, unknown>> => {
    try {
      return await client.sign(id, route, body);
    } catch (e) {
      if (e instanceof KeywardError && e.code === "policy_denied") throw new UserRejectedRequestError(e);
      throw e;
    }
  };
  const checked = (answer: Record<string, unknown>, digest: Hex): Hex => {
    if (String(answer.digest).toLowerCase() !== digest.toLowerCase()) {
      throw new KeywardTransportError("answer", `keyward signed ${String(answer.digest)}, this client computed ${digest}`);
    }
    if (getAddress(String(answer.address)) !== address) {
      throw new KeywardTransportError("answer", `keyward signed with ${String(answer.address)}, not ${address}`);
    }
    return answer.signature as Hex;
  };

  return toAccount({
    address,
    async signMessage({ message }: { message: SignableMessage }): Promise<Hex> {
      // always the exact bytes as hex: a text starting with 0x would otherwise be read as hex
      const bytes =
        typeof message === "string" ? stringToHex(message) : typeof message.raw === "string" ? message.raw : toHex(message.raw);
      return checked(await sign("evm/message", { message: bytes }), hashMessage(message));
    },
    async signTypedData(typedData): Promise<Hex> {
      const def = typedData as TypedDataDefinition;
      // eth_signTypedData_v4 JSON: bigints as strings, and the EIP712Domain type spelled
      // out (without it a reader may drop the domain's fields and hash another domain)
      const json = serializeTypedData({
        ...def,
        types: { EIP712Domain: getTypesForEIP712Domain({ domain: def.domain }), ...def.types },
      } as unknown as TypedDataDefinition);
      return checked(await sign("evm/typed-data", { typedData: json }), hashTypedData(def));
    },
    async signTransaction<S extends SerializeTransactionFn<TransactionSerializable> = SerializeTransactionFn<TransactionSerializable>>(
      transaction: Parameters<S>[0],
      options?: { serializer?: S },
    ): Promise<Hex> {
      const serializer = (options?.serializer ?? serializeTransaction) as SerializeTransactionFn<TransactionSerializable>;
      const tx = transaction as TransactionSerializable;
      const answer = await sign("evm/transaction", { transaction: transactionFields(tx) });
      const digest = keccak256(await serializer(tx));
      if (String(answer.digest).toLowerCase() !== digest.toLowerCase()) {
        throw new KeywardTransportError("answer", `keyward signed transaction digest ${String(answer.digest)}, viem's is ${digest}`);
      }
      const sig = answer.signature as { r: Hex; s: Hex; yParity: Hex; v: Hex };
      return await serializer(tx, {
        r: numberToHex(BigInt(sig.r), { size: 32 }),
        s: numberToHex(BigInt(sig.s), { size: 32 }),
        yParity: Number(BigInt(sig.yParity)),
        // legacy: keyward's EIP-155 v (chainId * 2 + 35 + yParity); typed: yParity
        v: BigInt(sig.v),
      });
    },
  });
}

/** `eth_signTransaction` fields (legacy, EIP-2930, EIP-1559: the types keyward signs). */
function transactionFields(tx: TransactionSerializable): Record<string, unknown> {
  const q = (v: bigint | number | undefined) => (v === undefined ? undefined : numberToHex(v));
  const type =
    tx.type ??
    (tx.maxFeePerGas !== undefined || tx.maxPriorityFeePerGas !== undefined
      ? "eip1559"
      : tx.accessList !== undefined
        ? "eip2930"
        : "legacy");
  const typeHex = { legacy: "0x0", eip2930: "0x1", eip1559: "0x2" }[type as string];
  if (!typeHex) {
    throw new TypeError(`transaction type ${String(type)}: keyward signs legacy, eip2930 and eip1559 transactions`);
  }
  const fields: Record<string, unknown> = {
    type: typeHex,
    chainId: q(tx.chainId),
    nonce: q(tx.nonce ?? 0),
    to: tx.to ?? undefined,
    value: q(tx.value ?? 0n),
    data: tx.data ?? "0x",
    gas: q(tx.gas),
  };
  if (typeHex === "0x2") {
    fields.maxFeePerGas = q(tx.maxFeePerGas);
    fields.maxPriorityFeePerGas = q(tx.maxPriorityFeePerGas);
  } else {
    fields.gasPrice = q(tx.gasPrice);
  }
  if (typeHex !== "0x0") fields.accessList = tx.accessList ?? [];
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}
