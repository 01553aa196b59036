// ethers v6 and viem against keyward's JSON-RPC face, over mTLS, with nothing but a URL
// and a TLS configuration. Every signature is checked with the same library's recovery.
// Run by tests/interop.rs (scripts/interop), which starts keyward and a ganache node and
// passes: KW_URL, KW_CA, KW_CERT, KW_KEY (PEM paths), KW_ADDRESS, KW_CHAIN_ID.
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";

import * as ethers from "ethers";
import * as viem from "viem";
import { Agent } from "undici";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("KW_URL");
const tls = {
  ca: fs.readFileSync(env("KW_CA")),
  cert: fs.readFileSync(env("KW_CERT")),
  key: fs.readFileSync(env("KW_KEY")),
};
const address = ethers.getAddress(env("KW_ADDRESS"));
const chainId = Number(env("KW_CHAIN_ID"));
const to = "0x3535353535353535353535353535353535353535";

const domain = {
  name: "Ether Mail",
  version: "1",
  chainId,
  verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
};
const types = {
  Person: [
    { name: "name", type: "string" },
    { name: "wallet", type: "address" },
  ],
  Mail: [
    { name: "from", type: "Person" },
    { name: "to", type: "Person" },
    { name: "contents", type: "string" },
  ],
};
const mail = {
  from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
  to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
  contents: "Hello, Bob!",
};
// longer than the interop policy's message.max_len (64): refused by policy
const tooLong = "x".repeat(100);

let checks = 0;
const ok = (what) => {
  checks += 1;
  console.log(`ok - ${what}`);
};

async function withEthers() {
  // ethers' Node fetch goes through node:https; the agent carries the client certificate
  const req = new ethers.FetchRequest(url);
  req.getUrlFunc = ethers.FetchRequest.createGetUrlFunc({ agent: new https.Agent(tls) });
  const provider = new ethers.JsonRpcProvider(req);
  try {
    const signer = await provider.getSigner(address);
    ok("ethers: getSigner(address) finds the wallet in eth_accounts");
    assert.equal((await provider.getNetwork()).chainId, BigInt(chainId));

    const message = "hello from ethers";
    const sig = await signer.signMessage(message);
    assert.equal(ethers.verifyMessage(message, sig), address);
    ok("ethers: signMessage, verifyMessage recovers the wallet");

    const tsig = await signer.signTypedData(domain, types, mail);
    assert.equal(ethers.verifyTypedData(domain, types, mail, tsig), address);
    ok("ethers: signTypedData, verifyTypedData recovers the wallet");

    const raw = await signer.signTransaction({
      to,
      value: 1n,
      nonce: 1000,
      gasLimit: 21000n,
      maxFeePerGas: 30_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
      chainId,
    });
    const tx = ethers.Transaction.from(raw);
    assert.equal(tx.from, address);
    assert.equal(tx.nonce, 1000);
    assert.equal(tx.chainId, BigInt(chainId));
    ok("ethers: signTransaction (EIP-1559), Transaction.from recovers the wallet");

    // nonce, fees and gas left out: keyward fills them from the node
    const filled = ethers.Transaction.from(await signer.signTransaction({ to, value: 2n }));
    assert.equal(filled.from, address);
    assert.ok(filled.gasLimit >= 21000n);
    ok("ethers: signTransaction without nonce/gas/fees is filled from the upstream node");

    await assert.rejects(signer.signMessage(tooLong), (e) => {
      assert.equal(e.code, "ACTION_REJECTED", `${e.code}: ${e.message}`);
      return true;
    });
    ok("ethers: a policy refusal is ACTION_REJECTED");

    // through the node: eth_sendTransaction signed by keyward, mined by ganache, and the
    // receipt read back through keyward's forwarding
    const sent = await signer.sendTransaction({ to, value: 12345n });
    const receipt = await sent.wait();
    assert.equal(receipt.status, 1, `receipt ${JSON.stringify(receipt)} of ${JSON.stringify(await provider.getTransaction(sent.hash))}`);
    assert.equal(receipt.from, address);
    const again = await provider.getTransactionReceipt(sent.hash);
    assert.equal(again.blockNumber, receipt.blockNumber);
    // the node's count at the receipt's block (ethers caches identical calls briefly, so
    // never ask the same question before and after)
    assert.equal(await provider.getTransactionCount(address, receipt.blockNumber), sent.nonce + 1);
    ok(`ethers: sendTransaction mined in block ${receipt.blockNumber}, receipt read through keyward`);
  } finally {
    provider.destroy();
  }
}

async function withViem() {
  // undici's Agent carries the client certificate for Node's fetch
  const dispatcher = new Agent({ connect: tls });
  const chain = viem.defineChain({
    id: chainId,
    name: "ganache",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const transport = viem.http(url, { fetchOptions: { dispatcher } });
  const wallet = viem.createWalletClient({ account: address, chain, transport });
  const pub = viem.createPublicClient({ chain, transport });
  try {
    assert.deepEqual(await wallet.getAddresses(), [address]);
    ok("viem: getAddresses (eth_accounts)");

    const message = "hello from viem";
    const sig = await wallet.signMessage({ message });
    assert.equal(await viem.recoverMessageAddress({ message, signature: sig }), address);
    ok("viem: signMessage, recoverMessageAddress recovers the wallet");

    const tsig = await wallet.signTypedData({ domain, types, primaryType: "Mail", message: mail });
    assert.equal(
      await viem.recoverTypedDataAddress({ domain, types, primaryType: "Mail", message: mail, signature: tsig }),
      address,
    );
    ok("viem: signTypedData, recoverTypedDataAddress recovers the wallet");

    const raw = await wallet.signTransaction({
      to,
      value: 1n,
      nonce: 2000,
      gas: 21000n,
      maxFeePerGas: 30_000_000_000n,
      maxPriorityFeePerGas: 1_000_000_000n,
    });
    assert.equal(await viem.recoverTransactionAddress({ serializedTransaction: raw }), address);
    assert.equal(viem.parseTransaction(raw).nonce, 2000);
    ok("viem: signTransaction, recoverTransactionAddress recovers the wallet");

    await assert.rejects(wallet.signMessage({ message: tooLong }), (e) => {
      const rejected = e.walk((x) => x.code === 4001);
      assert.ok(rejected, `${e.name}: ${e.message}`);
      return true;
    });
    ok("viem: a policy refusal is UserRejectedRequestError (4001)");

    const hash = await wallet.sendTransaction({ to, value: 777n });
    const receipt = await pub.waitForTransactionReceipt({ hash, pollingInterval: 100 });
    assert.equal(receipt.status, "success");
    assert.equal(viem.getAddress(receipt.from), address);
    ok(`viem: sendTransaction mined in block ${receipt.blockNumber}, receipt read through keyward`);
  } finally {
    await dispatcher.close();
  }
}

await withEthers();
await withViem();
console.log(`ethers and viem: ${checks} checks ok`);
