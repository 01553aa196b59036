export { KeywardClient, type KeywardClientOptions, type KeywardTls, type WalletInfo } from "./client.js";
export { KeywardError, KeywardTransportError } from "./errors.js";
export { keywardAccount, type KeywardAccountOptions } from "./viem.js";
export { keywardSolanaSigner, type KeywardSolanaSigner, type KeywardSolanaSignerOptions } from "./solana.js";
