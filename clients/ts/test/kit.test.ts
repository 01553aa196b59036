// The kit against a live keyward and a ganache node, started by tests/interop.rs (root
// crate; run by scripts/interop), which passes: KEYWARD_URL, KEYWARD_CA, KEYWARD_CERT,
// KEYWARD_KEY (PEM paths), KEYWARD_FOREIGN_CERT/KEY (a client certificate of another CA),
// KEYWARD_WALLET (EVM, ganache's funded account 0), KEYWARD_SOLANA_WALLET, CHAIN_ID,
// RPC_URL (ganache). Every signature is checked with the library's own verifier.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import { KeywardError, KeywardTransportError, keywardAccount, keywardSolanaSigner } from "@keyward/client";
import {
  type Blockhash,
  createSignableMessage,
  getPublicKeyFromAddress,
  verifySignature,
} from "@solana/kit";
import {
  type TransactionSerialized,
  UserRejectedRequestError,
  createPublicClient,
  defineChain,
  http,
  parseEther,
  recoverTransactionAddress,
  verifyMessage,
  verifyTypedData,
} from "viem";

import { signTransfer } from "../examples/solana_transfer.js";
import { sendWithKeyward } from "../examples/viem_send.js";

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("KEYWARD_URL");
const tls = {
  ca: fs.readFileSync(env("KEYWARD_CA")),
  cert: fs.readFileSync(env("KEYWARD_CERT")),
  key: fs.readFileSync(env("KEYWARD_KEY")),
};
const chainId = Number(env("CHAIN_ID"));
const to = "0x3535353535353535353535353535353535353535";

const typedData = {
  domain: {
    name: "Ether Mail",
    version: "1",
    chainId: 1,
    verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
  },
  types: {
    Person: [
      { name: "name", type: "string" },
      { name: "wallet", type: "address" },
    ],
    Mail: [
      { name: "from", type: "Person" },
      { name: "to", type: "Person" },
      { name: "contents", type: "string" },
    ],
  },
  primaryType: "Mail",
  message: {
    from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    contents: "Hello, Bob!",
  },
} as const;

test("viem account: messages and typed data verify with viem", async () => {
  const account = await keywardAccount({ url, tls, walletId: env("KEYWARD_WALLET") });
  for (const message of ["hello keyward", "0x1234 is text here", { raw: new Uint8Array([0, 1, 2, 255]) }]) {
    const signature = await account.signMessage!({ message });
    assert.equal(await verifyMessage({ address: account.address, message, signature }), true, String(message));
  }
  const signature = await account.signTypedData!(typedData);
  assert.equal(await verifyTypedData({ address: account.address, signature, ...typedData }), true);

  // found by address too
  const same = await keywardAccount({ url, tls, address: account.address });
  assert.equal(same.address, account.address);
});

test("viem account: transactions recover to the wallet", async () => {
  const account = await keywardAccount({ url, tls, walletId: env("KEYWARD_WALLET") });
  for (const tx of [
    {
      type: "eip1559",
      chainId,
      nonce: 3,
      to,
      value: 5n,
      gas: 21000n,
      maxFeePerGas: 30_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
    },
    { type: "legacy", chainId, nonce: 4, to, value: 6n, gas: 21000n, gasPrice: 2_000_000_000n },
    { type: "eip2930", chainId, nonce: 5, to, value: 7n, gas: 30000n, gasPrice: 2_000_000_000n, accessList: [] },
  ] as const) {
    const serialized = (await account.signTransaction!(tx)) as TransactionSerialized;
    assert.equal(await recoverTransactionAddress({ serializedTransaction: serialized }), account.address, tx.type);
  }
});

test("viem wallet client with keywardAccount: ganache mines the transaction", async () => {
  // the example, as docs/client-kits.md shows it
  const { account, hash } = await sendWithKeyward({ ...process.env, RPC_URL: env("RPC_URL") });
  const chain = defineChain({
    id: chainId,
    name: "ganache",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [env("RPC_URL")] } },
  });
  const node = createPublicClient({ chain, transport: http() });
  const receipt = await node.waitForTransactionReceipt({ hash, pollingInterval: 100 });
  assert.equal(receipt.status, "success");
  assert.equal(receipt.from.toLowerCase(), account.address.toLowerCase());
  const tx = await node.getTransaction({ hash });
  assert.equal(tx.value, parseEther("0.001"));
});

test("policy refusal: viem's UserRejectedRequestError, KeywardError with rule and auditId as cause", async () => {
  const account = await keywardAccount({ url, tls, walletId: env("KEYWARD_WALLET") });
  await assert.rejects(
    account.signTransaction!({
      type: "eip1559",
      chainId,
      nonce: 0,
      to,
      value: parseEther("0.02"), // over the test policy's 0.01 ether
      gas: 21000n,
      maxFeePerGas: 30_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
    }),
    (e: unknown) => {
      assert.ok(e instanceof UserRejectedRequestError, String(e));
      const cause = e.cause;
      assert.ok(cause instanceof KeywardError, String(cause));
      assert.deepEqual([cause.status, cause.code, cause.rule], [403, "policy_denied", "kit-evm"]);
      assert.deepEqual(cause.matchedRules, ["kit-evm"]);
      assert.match(cause.auditId ?? "", /\S/);
      return true;
    },
  );
});

test("@solana/kit transfer and message signed through the kit signer verify", async () => {
  // the example, as docs/client-kits.md shows it
  const { signer, signed } = await signTransfer({
    blockhash: "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N" as Blockhash,
    lastValidBlockHeight: 100n,
  });
  const key = await getPublicKeyFromAddress(signer.address);
  const sig = signed.signatures[signer.address];
  assert.ok(sig, "the wallet's signature is in place");
  assert.equal(await verifySignature(key, sig, signed.messageBytes), true);

  const [dict] = await signer.signMessages([createSignableMessage("hello keyward")]);
  const msgSig = dict?.[signer.address];
  assert.ok(msgSig);
  assert.equal(await verifySignature(key, msgSig, new TextEncoder().encode("hello keyward")), true);
});

test("unknown wallet: KeywardError wallet_not_found", async () => {
  for (const make of [
    () => keywardAccount({ url, tls, walletId: "no-such-wallet" }),
    () => keywardSolanaSigner({ url, tls, walletId: "no-such-wallet" }),
  ]) {
    await assert.rejects(make(), (e: unknown) => {
      assert.ok(e instanceof KeywardError, String(e));
      assert.deepEqual([e.status, e.code], [404, "wallet_not_found"]);
      return true;
    });
  }
});

test("a client certificate of another CA: KeywardTransportError tls", async () => {
  const foreign = {
    ca: tls.ca,
    cert: fs.readFileSync(env("KEYWARD_FOREIGN_CERT")),
    key: fs.readFileSync(env("KEYWARD_FOREIGN_KEY")),
  };
  await assert.rejects(keywardAccount({ url, tls: foreign, walletId: env("KEYWARD_WALLET") }), (e: unknown) => {
    assert.ok(e instanceof KeywardTransportError, String(e));
    assert.equal(e.kind, "tls", e.message);
    assert.match(e.message, /does not accept this client certificate/);
    return true;
  });
  // a server certificate this client does not trust
  const untrusting = { ...tls, ca: fs.readFileSync(env("KEYWARD_FOREIGN_CA")) };
  await assert.rejects(keywardAccount({ url, tls: untrusting, walletId: env("KEYWARD_WALLET") }), (e: unknown) => {
    assert.ok(e instanceof KeywardTransportError, String(e));
    assert.equal(e.kind, "tls", e.message);
    return true;
  });
});
