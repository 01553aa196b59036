/** An error answer of keyward (`{"error":{"code","message","rule"?},"auditId"?}`). */
export class KeywardError extends Error {
  override readonly name = "KeywardError";
  /** HTTP status. */
  readonly status: number;
  /** keyward's stable snake_case code: `policy_denied`, `wallet_not_found`, ... */
  readonly code: string;
  /** The refusing policy rule or rate limit (`policy_denied`, `rate_limited`). */
  readonly rule: string | undefined;
  /** The audit record of the request (sign routes). */
  readonly auditId: string | undefined;
  /** The rules that covered the request (`policy_denied`). */
  readonly matchedRules: readonly string[];
  /** `Retry-After` in seconds (`rate_limited`). */
  readonly retryAfter: number | undefined;

  constructor(args: {
    status: number;
    code: string;
    message: string;
    rule?: string | undefined;
    auditId?: string | undefined;
    matchedRules?: readonly string[] | undefined;
    retryAfter?: number | undefined;
  }) {
    super(`keyward ${args.status} ${args.code}: ${args.message}`);
    this.status = args.status;
    this.code = args.code;
    this.rule = args.rule;
    this.auditId = args.auditId;
    this.matchedRules = args.matchedRules ?? [];
    this.retryAfter = args.retryAfter;
  }
}

/**
 * keyward could not be reached or did not answer: `tls` (the handshake failed or keyward
 * ended the session with an alert: a client certificate it does not accept, or a server
 * certificate this client does not trust), `connect`, `timeout`, `answer` (a body this
 * client cannot use, or a signature that does not verify: fail closed).
 */
export class KeywardTransportError extends Error {
  override readonly name = "KeywardTransportError";
  readonly kind: "tls" | "connect" | "timeout" | "answer";

  constructor(kind: KeywardTransportError["kind"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}
