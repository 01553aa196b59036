import net from "node:net";
import tls from "node:tls";

import { Agent, fetch } from "undici";

import { KeywardError, KeywardTransportError } from "./errors.js";

/** The client certificate, its key and the CA of keyward's server certificate (PEM). */
export interface KeywardTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export interface KeywardClientOptions {
  /** `https://host:port` of keyward's signing API. */
  url: string;
  tls: KeywardTls;
  /** Whole request, answer included (default 60 s). */
  timeoutMs?: number;
}

/** A wallet as `GET /v1/wallets/{id}` describes it. */
export interface WalletInfo {
  id: string;
  chain: "evm" | "solana";
  address: string | null;
  label?: string | null;
  status?: string;
  operations?: string[];
}

/** Signing API client over mutual TLS (undici Agent: kept-alive connections). */
export class KeywardClient {
  readonly url: string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #tls: KeywardTls;

  constructor(opts: KeywardClientOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== "https:") {
      throw new KeywardTransportError("connect", `url ${opts.url}: keyward is served over https only`);
    }
    this.url = opts.url.replace(/\/+$/, "");
    this.#agent = new Agent({
      connect: { ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key },
      keepAliveTimeout: 30_000,
      connectTimeout: 10_000,
    });
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#tls = opts.tls;
  }

  /** Closes the kept-alive connections. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  async wallet(walletId: string): Promise<WalletInfo> {
    return (await this.request("GET", walletPath(walletId, ""))) as WalletInfo;
  }

  /** The wallet holding `address` among those this client may use. */
  async walletByAddress(address: string): Promise<WalletInfo> {
    let after: string | null = null;
    for (;;) {
      const q: string = after ? `&after=${encodeURIComponent(after)}` : "";
      const page = (await this.request("GET", `/v1/wallets?limit=1000${q}`)) as {
        wallets: WalletInfo[];
        next: string | null;
      };
      const w = page.wallets.find((w) => w.address?.toLowerCase() === address.toLowerCase());
      if (w) return w;
      if (!page.next) break;
      after = page.next;
    }
    throw new KeywardError({
      status: 404,
      code: "wallet_not_found",
      message: `no wallet this client may use holds ${address}`,
    });
  }

  /** POST a sign route of a wallet (`evm/message`, `solana/transaction`, ...). */
  async sign(
    walletId: string,
    route: string,
    body: unknown,
    opts: { idempotencyKey?: string } = {},
  ): Promise<Record<string, unknown>> {
    return (await this.request("POST", walletPath(walletId, `/${route}`), body, opts.idempotencyKey)) as Record<
      string,
      unknown
    >;
  }

  async request(method: string, path: string, body?: unknown, idempotencyKey?: string): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    let res;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (e) {
      const err = transportError(e, this.#timeoutMs);
      // With TLS 1.3 the server judges the client certificate after the client's side of
      // the handshake is done: its alert then reaches undici as a closed socket. One bare
      // handshake and request on node:tls tells which it was.
      if (err.kind === "connect") {
        const alert = await tlsProbe(this.url, this.#tls);
        if (alert) throw transportError(alert, this.#timeoutMs);
      }
      throw err;
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw transportError(e, this.#timeoutMs);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new KeywardTransportError("answer", `HTTP ${res.status}: the answer is not JSON`);
    }
    if (res.ok) return json;
    const err = (json as { error?: { code?: string; message?: string; rule?: string } }).error;
    if (!err?.code) throw new KeywardTransportError("answer", `HTTP ${res.status} without a keyward error body`);
    const retry = res.headers.get("retry-after");
    throw new KeywardError({
      status: res.status,
      code: err.code,
      message: err.message ?? "",
      rule: err.rule,
      auditId: (json as { auditId?: string }).auditId,
      matchedRules: (json as { matchedRules?: string[] }).matchedRules,
      retryAfter: retry === null ? undefined : Number(retry),
    });
  }
}

/** `/v1/wallets/{id}{route}`; an id that would change the path is refused. */
function walletPath(walletId: string, route: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(walletId) || walletId === "." || walletId === "..") {
    throw new TypeError(`wallet id ${JSON.stringify(walletId)}: letters, digits, '-', '_' and '.' only`);
  }
  return `/v1/wallets/${walletId}${route}`;
}

/** Node's TLS failures: OpenSSL alerts and certificate verification codes. */
const TLS_CODES =
  /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|ERR_OSSL_)|CERT/;

function transportError(e: unknown, timeoutMs: number): KeywardTransportError {
  const chain: Array<{ code?: string; message?: string; name?: string }> = [];
  for (let c: unknown = e; c && chain.length < 8; c = (c as { cause?: unknown }).cause) {
    chain.push(c as { code?: string; message?: string; name?: string });
  }
  const tls = chain.find((c) => typeof c.code === "string" && TLS_CODES.test(c.code));
  if (tls) {
    return new KeywardTransportError(
      "tls",
      `TLS with keyward failed (${tls.code}): ${tls.message ?? ""}`.trim() +
        (/ALERT/.test(tls.code ?? "")
          ? " — keyward does not accept this client certificate (unknown CA, expired, revoked or missing)"
          : ""),
      { cause: e },
    );
  }
  if (chain.some((c) => c.name === "TimeoutError" || c.code === "UND_ERR_CONNECT_TIMEOUT")) {
    return new KeywardTransportError("timeout", `keyward did not answer within ${timeoutMs} ms`, { cause: e });
  }
  const last = chain[chain.length - 1];
  return new KeywardTransportError("connect", `cannot reach keyward: ${last?.code ?? ""} ${last?.message ?? String(e)}`, {
    cause: e,
  });
}

/** The TLS error of one handshake and request to `url`, if there is one (5 s at most). */
function tlsProbe(url: string, opts: KeywardTls): Promise<Error | undefined> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const socket = tls.connect({
      host,
      port: Number(u.port || 443),
      servername: net.isIP(host) ? undefined : host,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
    });
    const done = (e: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(e);
    };
    const timer = setTimeout(() => done(undefined), 5_000);
    socket.on("secureConnect", () => {
      socket.write(`GET /v1/whoami HTTP/1.1\r\nhost: ${u.host}\r\nconnection: close\r\n\r\n`);
    });
    socket.on("data", () => done(undefined));
    socket.on("error", (e: Error & { code?: string }) => done(typeof e.code === "string" && TLS_CODES.test(e.code) ? e : undefined));
    socket.on("close", () => done(undefined));
  });
}
