// What can go wrong on the wire, as types: a NetworkError (no answer at all,
// with a `kind` read from Node's error code, never from its message text) and
// an HttpError (an answer whose status says it failed). The one table of what
// each kind means lives here; each client adds what its user should change
// (which input, which kubeconfig field), as only it knows that.
import type { IncomingHttpHeaders } from 'node:http';

export type NetworkErrorKind =
  /** Nothing accepts connections at that address and port. */
  | 'refused'
  /** The host name does not resolve. */
  | 'dns'
  /** The resolver failed for now (EAI_AGAIN). */
  | 'dns-temporary'
  /** No route to the address. */
  | 'unreachable'
  /** The connection was not made in time. */
  | 'connect-timeout'
  /** Connected, but no answer within the timeout: the server may have acted on the request. */
  | 'no-answer'
  /** The connection broke after it was made. */
  | 'reset'
  /** The certificate is not signed by a trusted CA (self-signed, unknown issuer). */
  | 'tls-untrusted'
  /** The certificate does not name the host that was asked for. */
  | 'tls-hostname'
  /** The certificate has expired or is not valid yet. */
  | 'tls-expired'
  /** No TLS handshake at all: most often plain HTTP on the other end. */
  | 'tls-protocol'
  /** The answer was larger than the caller accepts. */
  | 'too-large'
  | 'other';

interface KindRow {
  /** Node's error codes of this kind. */
  codes: string[];
  /** What it means, as a clause that reads after "the server:" or on its own. */
  explanation: string;
}

/** The one table: Node error codes -> kind -> what it means. */
const KINDS: Record<NetworkErrorKind, KindRow> = {
  refused: { codes: ['ECONNREFUSED'], explanation: 'nothing accepts connections at that address and port' },
  dns: { codes: ['ENOTFOUND'], explanation: 'the host name does not resolve' },
  'dns-temporary': { codes: ['EAI_AGAIN'], explanation: 'the host name could not be resolved just now' },
  unreachable: { codes: ['EHOSTUNREACH', 'ENETUNREACH'], explanation: 'there is no route from this machine to that address' },
  'connect-timeout': { codes: ['ETIMEDOUT', 'ESOCKETTIMEDOUT'], explanation: 'the connection could not be made in time' },
  'no-answer': { codes: [], explanation: 'the server accepted the connection but did not answer in time' },
  reset: { codes: ['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET'], explanation: 'the connection was dropped before the answer was complete' },
  'tls-untrusted': {
    codes: [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_SIGNATURE_FAILURE',
      'CERT_UNTRUSTED',
    ],
    explanation: 'its certificate is not signed by a CA this runner trusts',
  },
  'tls-hostname': { codes: ['ERR_TLS_CERT_ALTNAME_INVALID'], explanation: 'its certificate is not valid for this address' },
  'tls-expired': { codes: ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'], explanation: 'its certificate has expired or is not valid yet' },
  'tls-protocol': { codes: ['EPROTO'], explanation: 'it does not speak TLS on this port' },
  'too-large': { codes: ['ERR_RESPONSE_TOO_LARGE'], explanation: 'its answer was larger than this client accepts' },
  other: { codes: [], explanation: 'the request failed' },
};

const KIND_BY_CODE = new Map<string, NetworkErrorKind>(
  (Object.entries(KINDS) as Array<[NetworkErrorKind, KindRow]>).flatMap(([kind, row]) => row.codes.map((code) => [code, kind] as const)),
);

/** The kind of a Node error code ("ECONNREFUSED", "ERR_SSL_WRONG_VERSION_NUMBER", …). */
export function kindOfCode(code: string | undefined): NetworkErrorKind {
  if (!code) return 'other';
  const known = KIND_BY_CODE.get(code);
  if (known) return known;
  // OpenSSL's handshake failures ("wrong version number" when the other end speaks plain HTTP).
  if (code.startsWith('ERR_SSL_')) return 'tls-protocol';
  return 'other';
}

/**
 * What a kind means, from the one table. `trusted` names the CAs that were
 * trusted, for `tls-untrusted` (e.g. `the CA in kubeconfig (…)`).
 */
export function explain(kind: NetworkErrorKind, context: { trusted?: string } = {}): string {
  if (kind === 'tls-untrusted' && context.trusted) return `its certificate is not signed by ${context.trusted}`;
  return KINDS[kind].explanation;
}

/** True for the kinds where the server's certificate was checked and refused. */
export function isCertificateKind(kind: NetworkErrorKind): boolean {
  return kind === 'tls-untrusted' || kind === 'tls-hostname' || kind === 'tls-expired';
}

/** A request that got no answer. `message` and `code` are Node's own (e.g. "connect ECONNREFUSED 127.0.0.1:1"). */
export class NetworkError extends Error {
  readonly kind: NetworkErrorKind;
  readonly code?: string;

  constructor(kind: NetworkErrorKind, message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NetworkError';
    this.kind = kind;
    this.code = options.code;
  }

  /** "CODE message", or the message when it already names the code. */
  describe(): string {
    return this.code && !this.message.includes(this.code) ? `${this.code} ${this.message}` : this.message;
  }
}

/** An answer whose status is a failure, thrown where a flow of several requests has to stop (or be tried again). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: IncomingHttpHeaders = {},
    readonly body: Buffer = Buffer.alloc(0),
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Any error from node:http(s) (or thrown while reading an answer) as a NetworkError. */
export function classify(err: unknown): NetworkError {
  if (err instanceof NetworkError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = e instanceof Error ? e.message : String(err);
  return new NetworkError(kindOfCode(code), message, { code, cause: err });
}
