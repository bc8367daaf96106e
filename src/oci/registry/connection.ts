// The registry client's shell: one connection to one repository. It picks
// the scheme (ping), sends requests with auth and bounded retries through
// the network layer, and turns what went wrong into one line that names the
// registry, the repository and the user, never a secret. The jobs built on
// it (blobs.ts, manifests.ts, tags.ts) only say what to send and what an
// answer means.
import * as http from 'node:http';
import type * as https from 'node:https';
import { readFile } from 'node:fs/promises';
import { log } from '../../log.js';
import { UserError } from '../../errors.js';
import {
  DEFAULT_RETRY,
  HttpError,
  NetworkError,
  TRANSIENT_KINDS,
  explain,
  headerOf,
  isCertificateKind,
  isRetryableStatus,
  request,
  retryAfterOf,
  tlsAgent,
  withRetries,
  type HttpResponse,
  type Outcome,
  type RetryPolicy,
} from '../../net/index.js';
import { Authenticator, type Credentials } from './auth.js';
import { isDockerHub, isLoopbackHost, parseRegistry, registryErrorText, validateRepository, type RegistryAddress } from './names.js';

export interface RegistryClientOptions {
  registry: string;
  repository: string;
  credentials?: Credentials;
  /** PEM file of a CA to trust on top of the system ones (the registry-ca input). */
  caFile?: string;
  /** PEM text of a CA (instead of caFile). */
  ca?: string | Buffer;
  /** Allow plain HTTP and skip TLS verification for a non-loopback registry (registry-insecure). */
  insecure?: boolean;
  retry?: Partial<RetryPolicy>;
  /** Per-request inactivity timeout (default 60 s). */
  timeoutMs?: number;
  /** Blobs larger than this are sent in PATCH chunks (default 32 MiB). */
  chunkThresholdBytes?: number;
  /** Size of each PATCH chunk (default 8 MiB). */
  chunkSizeBytes?: number;
  log?: (message: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface RequestSpec {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Leave out the Authorization header (cross-origin redirects, pings). */
  noAuth?: boolean;
  /** Write a 2xx answer's body to this file instead of memory. */
  toFile?: string;
}

export type { HttpResponse };

/** "HTTP 500 (UNKNOWN: unknown error)": a transient answer, for retry lines and the final message. */
function transient(res: HttpResponse, withBody = true): HttpError {
  const t = withBody ? registryErrorText(res.body) : '';
  return new HttpError(res.status, `HTTP ${res.status}${t ? ` (${t.slice(0, 200)})` : ''}`, res.headers, res.body);
}

function describe(err: unknown): string {
  if (err instanceof NetworkError) return err.describe();
  return err instanceof Error ? err.message : String(err);
}

export class RegistryConnection {
  readonly address: RegistryAddress;
  readonly repository: string;
  protected readonly credentials?: Credentials;
  protected readonly auth: Authenticator;
  readonly chunkThreshold: number;
  readonly chunkSize: number;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly insecure: boolean;
  private readonly log: (m: string) => void;
  private readonly sleep?: (ms: number) => Promise<void>;
  private readonly caOption?: string | Buffer;
  private readonly caFile?: string;
  private httpsAgent?: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private scheme?: 'http' | 'https';

  constructor(opts: RegistryClientOptions) {
    this.address = parseRegistry(opts.registry);
    validateRepository(opts.repository);
    this.repository = isDockerHub(this.address.host) && !opts.repository.includes('/') ? `library/${opts.repository}` : opts.repository;
    this.credentials = opts.credentials;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.chunkThreshold = opts.chunkThresholdBytes ?? 32 * 1024 * 1024;
    this.chunkSize = Math.max(1, opts.chunkSizeBytes ?? 8 * 1024 * 1024);
    this.insecure = !!opts.insecure;
    this.log = opts.log ?? ((m) => log.info(m));
    this.sleep = opts.sleep;
    this.caOption = opts.ca;
    this.caFile = opts.caFile;
    if (this.address.scheme === 'http' && !this.plainHttpAllowed()) {
      throw new UserError(`refusing plain HTTP to ${this.address.host}: it is not a loopback address; use https, or set registry-insecure: true`);
    }
    this.auth = new Authenticator({
      host: this.address.host,
      repository: this.repository,
      credentials: this.credentials,
      insecure: this.insecure,
      who: () => this.who(),
      fetch: (action, spec) =>
        this.retrying(action, async () => {
          const r = await this.exchange(spec);
          if (isRetryableStatus(r.status)) throw new HttpError(r.status, `token service answered HTTP ${r.status}`, r.headers, r.body);
          return r;
        }),
    });
  }

  private plainHttpAllowed(): boolean {
    return this.insecure || isLoopbackHost(this.address.apiHost);
  }

  protected who(): string {
    if (!this.credentials) return 'anonymous access (no credentials were found)';
    if (this.credentials.username) return `user "${this.credentials.username}" (from ${this.credentials.origin})`;
    return `the identity token from ${this.credentials.origin}`;
  }

  get ref(): string {
    return `${this.address.host}/${this.repository}`;
  }

  private async agentFor(scheme: 'http' | 'https'): Promise<http.Agent> {
    if (scheme === 'http') return this.httpAgent;
    if (!this.httpsAgent) {
      let extra: string | Buffer | undefined = this.caOption;
      if (!extra && this.caFile) {
        try {
          extra = await readFile(this.caFile);
        } catch (err) {
          throw new UserError(`could not read the CA certificate file ${this.caFile} (registry-ca): ${(err as Error).message}`);
        }
      }
      this.httpsAgent = tlsAgent({ ca: extra, insecure: this.insecure });
    }
    return this.httpsAgent;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent?.destroy();
  }

  // -- transport ------------------------------------------------------------

  /** One HTTP exchange, body read in full. Network failures reject with a NetworkError. */
  private async exchange(spec: RequestSpec): Promise<HttpResponse> {
    const agent = await this.agentFor(spec.url.protocol === 'http:' ? 'http' : 'https');
    return request({ method: spec.method, url: spec.url, headers: spec.headers, body: spec.body, agent, timeoutMs: this.timeoutMs, toFile: spec.toFile });
  }

  base(): string {
    const scheme = this.scheme ?? this.address.scheme ?? 'https';
    return `${scheme}://${this.address.apiHost}`;
  }

  url(path: string): URL {
    return new URL(`${this.base()}${path}`);
  }

  repoPath(kind: 'blobs' | 'manifests', ref: string): string {
    return `/v2/${this.repository}/${kind}/${ref}`;
  }

  get defaultScope(): string {
    return `repository:${this.repository}:pull,push`;
  }

  /** Sends with auth; answers one 401 challenge by (re)authenticating, then sends again. */
  async authorized(spec: RequestSpec, scope = this.defaultScope): Promise<HttpResponse> {
    const sameOrigin = spec.url.origin === new URL(this.base()).origin;
    const withAuth = async (): Promise<HttpResponse> => {
      const headers = { ...spec.headers };
      if (!spec.noAuth && sameOrigin) {
        const value = await this.auth.authorization(scope);
        if (value) headers.Authorization = value;
      }
      return this.exchange({ ...spec, headers });
    };
    let res = await withAuth();
    if (res.status === 401 && !spec.noAuth && sameOrigin) {
      const challenge = headerOf(res, 'www-authenticate');
      if (challenge && this.auth.adoptChallenge(challenge, scope)) res = await withAuth();
    }
    return res;
  }

  /**
   * Runs `fn` up to the policy's number of tries while it fails with something
   * transient: an HttpError (thrown for a transient status) or a NetworkError
   * of a transient kind. Every step in `fn` must be safe to repeat: a blob
   * upload is, as each try starts a new upload session and sends the blob whole.
   * With `detailsFromBody`, the last transient answer's body is shown under the message.
   */
  async retrying<T>(action: string, fn: () => Promise<T>, detailsFromBody = false): Promise<T> {
    const { outcome, tries } = await withRetries(fn, {
      policy: this.retry,
      safeToRepeat: true,
      retryable: (o: Outcome<T>) => {
        if (o.ok) return undefined;
        if (o.error instanceof HttpError) return { retryAfterMs: retryAfterOf(o.error.headers) };
        if (o.error instanceof NetworkError && TRANSIENT_KINDS.has(o.error.kind)) return {};
        return undefined;
      },
      onRetry: ({ attempt, delayMs, outcome: o }) =>
        this.log(`${action}: ${describe(o.ok ? undefined : o.error)}; trying again in ${delayMs} ms (${attempt}/${this.retry.attempts - 1})`),
      sleep: this.sleep,
    });
    if (outcome.ok) return outcome.value;
    const final = this.finalError(action, outcome.error, tries, detailsFromBody);
    if (final !== outcome.error) Object.assign(final, { cause: outcome.error });
    throw final;
  }

  private finalError(action: string, err: unknown, tries: number, detailsFromBody: boolean): Error {
    const host = this.address.host;
    if (err instanceof UserError) return err;
    if (err instanceof HttpError) {
      return new UserError(
        `registry ${host} kept failing while ${action} for ${this.ref}: ${err.message} (gave up after ${tries} tries)`,
        (detailsFromBody && registryErrorText(err.body)) || undefined,
      );
    }
    if (err instanceof NetworkError) {
      if (isCertificateKind(err.kind)) {
        const fix =
          err.kind === 'tls-untrusted'
            ? "give the CA certificate that signed it (registry-ca), or fix the registry's certificate"
            : "fix the registry's certificate (registry-insecure: true skips the check)";
        return new UserError(`could not verify the TLS certificate of registry ${host} (${err.code}: ${explain(err.kind)}): ${fix}`);
      }
      if (err.kind === 'tls-protocol') {
        return new UserError(`registry ${host} does not speak TLS (${describe(err)}): if it really serves plain HTTP, set registry-insecure: true`);
      }
      if (TRANSIENT_KINDS.has(err.kind)) {
        return new UserError(
          `could not reach registry ${host} while ${action} (${describe(err)}; gave up after ${tries} tries): check the registry address and that it is running and reachable`,
        );
      }
    }
    return new UserError(`request to registry ${host} failed while ${action}: ${describe(err)}`);
  }

  /**
   * Sends a request with auth and retries. Transient statuses are tried
   * again; any other answer (whatever its status) is returned.
   */
  async send(action: string, spec: RequestSpec, scope = this.defaultScope): Promise<HttpResponse> {
    return this.retrying(
      action,
      async () => {
        const res = await this.authorized(spec, scope);
        if (isRetryableStatus(res.status)) throw transient(res);
        return res;
      },
      true,
    );
  }

  authError(res: HttpResponse, action: string): UserError {
    const base = `registry ${this.address.host} refused ${this.who()} for repository ${this.repository} while ${action} (HTTP ${res.status})`;
    const advice =
      res.status === 401
        ? 'check the username and password (or token) and that they belong to this registry'
        : `check that this user may push to ${this.repository} (and that the repository exists, if the registry does not create it on push)`;
    return new UserError(`${base}: ${advice}`, registryErrorText(res.body) || undefined);
  }

  unexpected(res: HttpResponse, action: string): UserError {
    if (res.status === 401 || res.status === 403) return this.authError(res, action);
    return new UserError(`registry ${this.address.host} answered HTTP ${res.status} while ${action} for ${this.ref}`, registryErrorText(res.body) || undefined);
  }

  /** Passes an expected status; throws a transient HttpError (tried again) or the error for anything else. */
  check(res: HttpResponse, ok: number[], action: string): void {
    if (ok.includes(res.status)) return;
    if (isRetryableStatus(res.status)) throw transient(res);
    throw this.unexpected(res, action);
  }

  // -- API --------------------------------------------------------------------

  /**
   * GET /v2/: picks the scheme (https, or plain http where allowed and the
   * server does not speak TLS) and learns how the registry authenticates.
   */
  async ping(): Promise<void> {
    const candidates: Array<'http' | 'https'> = this.address.scheme ? [this.address.scheme] : this.plainHttpAllowed() ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of candidates) {
      this.scheme = scheme;
      try {
        const res = await this.retrying(`connecting to ${scheme}://${this.address.apiHost}`, async () => {
          const r = await this.exchange({ method: 'GET', url: this.url('/v2/') });
          if (isRetryableStatus(r.status)) throw transient(r, false);
          return r;
        });
        if (res.status === 401) {
          const challenge = headerOf(res, 'www-authenticate');
          if (challenge) this.auth.adoptChallenge(challenge, this.defaultScope);
          if (this.auth.needsMissingLogin) {
            throw new UserError(
              `registry ${this.address.host} needs a login (Basic auth) and no credentials were found: set registry-username and registry-password, or give a docker-config with a login for it`,
            );
          }
        } else if (res.status === 404) {
          throw new UserError(`${this.base()} does not serve the registry API (GET /v2/ answered 404): check the registry address`);
        } else if (res.status !== 200) {
          throw this.unexpected(res, 'checking the registry API (GET /v2/)');
        }
        return;
      } catch (err) {
        lastErr = err;
        const cause = (err as { cause?: unknown }).cause ?? err;
        if (scheme === 'https' && candidates.includes('http') && cause instanceof NetworkError && cause.kind === 'tls-protocol') continue;
        throw err;
      }
    }
    throw lastErr;
  }
}
