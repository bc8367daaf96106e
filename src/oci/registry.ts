// A small OCI distribution client, written by hand on node:http/node:https:
// no npm package we could find pushes images, and this one needs only a
// handful of endpoints (distribution-spec "push" and "pull" by digest).
//
// What it takes care of:
// - blobs: HEAD first and skip when present; POST then one PUT, or PATCH
//   chunks then PUT above a size threshold; every upload confirmed by HEAD;
// - manifests: PUT with the exact bytes, last, by digest, then by tag;
// - auth: anonymous, Basic, or Bearer tokens from the WWW-Authenticate
//   challenge (cached per scope); credentials from options or Docker config;
// - TLS with an extra CA; plain HTTP only for loopback hosts or when allowed;
// - bounded retries with backoff on 5xx, 429 (Retry-After honoured) and
//   dropped connections;
// - error messages that name the registry, repository and user, never a secret.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import * as core from '@actions/core';
import { UserError } from '../errors.js';
import { run } from '../exec.js';
import { MEDIA_TYPES, sha256Digest } from './image.js';
import type { ImageSource } from './gate.js';
import { maskSecret } from '../github.js';

// ---------------------------------------------------------------------------
// small pure helpers


/** True for 127.0.0.0/8, ::1 and localhost (with or without a port). */
export function isLoopbackHost(host: string): boolean {
  const hostname = splitHostPort(host).hostname.toLowerCase();
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (isIP(hostname) === 4) return hostname.startsWith('127.');
  if (isIP(hostname) === 6) return hostname === '::1' || hostname === '0:0:0:0:0:0:0:1';
  return false;
}

/** Splits "host:port", "[v6]:port", "host" into parts. */
export function splitHostPort(host: string): { hostname: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) return { hostname: v6[1], port: v6[2] ? Number(v6[2]) : undefined };
  const m = /^([^:/]+)(?::(\d+))?$/.exec(host);
  if (m) return { hostname: m[1], port: m[2] ? Number(m[2]) : undefined };
  return { hostname: host };
}

export interface RegistryAddress {
  /** As the user wrote it, without a scheme: "host[:port]". Used in refs. */
  host: string;
  /** Where the API lives (differs only for Docker Hub). */
  apiHost: string;
  /** Forced by an explicit "http://" or "https://" prefix. */
  scheme?: 'http' | 'https';
}

/** Parses a registry option: "host[:port]", optionally with a scheme. */
export function parseRegistry(registry: string): RegistryAddress {
  let text = registry.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\//i.exec(text);
  if (m) {
    scheme = m[1].toLowerCase() as 'http' | 'https';
    text = text.slice(m[0].length);
  }
  text = text.replace(/\/+$/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(text)) {
    throw new UserError(`the registry "${registry}" is not a host name with an optional port (e.g. ghcr.io or registry.example.com:5000)`);
  }
  const port = /:(\d+)$/.exec(text)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw new UserError(`the registry "${registry}" names port ${port}, which is not a port number (1 to 65535)`);
  }
  const lower = text.toLowerCase();
  const apiHost = lower === 'docker.io' || lower === 'index.docker.io' ? 'registry-1.docker.io' : text;
  return { host: text, apiHost, scheme };
}

const REPO_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPO_RE = new RegExp(`^${REPO_COMPONENT}(?:/${REPO_COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function validateRepository(repository: string): void {
  if (!REPO_RE.test(repository) || repository.length > 255) {
    throw new UserError(
      `the repository "${repository}" is not a valid image repository name: use lower-case letters, digits and . _ - separated by /, e.g. my-team/header-plugin`,
    );
  }
}

export function validateTag(tag: string): void {
  if (!TAG_RE.test(tag)) {
    throw new UserError(`the tag "${tag}" is not a valid image tag: up to 128 letters, digits, _ . -, not starting with . or -`);
  }
}

/**
 * Tags that name a release (v1.2.3, 1.2.3, 1.2, 1.2.3-rc.1) and so are never
 * moved to another image without `force`. A bare major ("v1") and names such
 * as "latest" or "main" are treated as moving tags.
 */
export function isVersionTag(tag: string): boolean {
  return /^v?\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$/.test(tag);
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 7235): one or more challenges, each a
 * scheme followed by comma-separated key=value or key="quoted value" pairs.
 * Scheme names are lower-cased, as are parameter names.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const word = token();
    if (!word) {
      i++; // skip a stray character
      continue;
    }
    skipWs();
    if (header[i] === '=' && current) {
      // key=value inside the current challenge
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const vstart = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(vstart, i);
      }
      current.params[word.toLowerCase()] = value;
      continue;
    }
    if (header[i] === '=' && !current) {
      // a parameter with no scheme before it: ignore it
      i = start + word.length + 1;
      continue;
    }
    // a new challenge; it may carry a token68 instead of parameters
    current = { scheme: word.toLowerCase(), params: {} };
    challenges.push(current);
  }
  return challenges;
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is cut to it. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

/** Retry-After in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - nowMs);
}

/** How long to wait after failed try number `attempt` (1-based). */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

export function isRetryableNetworkError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e) return false;
  if (e.code && RETRYABLE_CODES.has(e.code)) return true;
  return /socket hang up/i.test(e.message ?? '');
}

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
]);

function isTlsVerifyError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return !!code && TLS_VERIFY_CODES.has(code);
}

/** The error Node gives when it speaks TLS to a plain-HTTP server. */
function isTlsProtocolError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e) return false;
  return e.code === 'EPROTO' || (e.code ?? '').startsWith('ERR_SSL_') || /wrong version number|packet length too long/i.test(e.message ?? '');
}

// ---------------------------------------------------------------------------
// credentials

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (Docker's "identitytoken", or a helper's "<token>" user). */
  identityToken?: string;
  /** Where they came from, for messages ("the given username and password", "docker config ..."). */
  origin: string;
}

export interface CredentialOptions {
  registry: string;
  username?: string;
  password?: string;
  /** Docker config.json; default $DOCKER_CONFIG/config.json, then ~/.docker/config.json. */
  dockerConfigPath?: string;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Docker's own normalisation of auths keys: drop the scheme and any path. */
function configKeyHost(key: string): string {
  return key
    .replace(/^https?:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

function isDockerHub(host: string): boolean {
  return ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host.toLowerCase());
}

/**
 * Runs `docker-credential-<helper> get` with the server on stdin. With
 * `optional` (the global credsStore), a helper that is not installed is
 * passed over, as the config may come from another machine.
 */
async function fromHelper(helper: string, serverUrl: string, configPath: string, optional = false): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new UserError(`the credential helper name "${helper}" in ${configPath} is not valid`);
  const program = `docker-credential-${helper}`;
  let result;
  try {
    result = await run(program, ['get'], {
      input: serverUrl,
      echo: false,
      allowFailure: true,
      purpose: `read registry credentials for ${serverUrl} with ${program}`,
    });
  } catch (err) {
    if (optional) {
      core.info(`credsStore "${helper}" in ${configPath} is not usable here (${program} could not be started); looking at "auths"`);
      return undefined;
    }
    throw err;
  }
  if (result.exitCode !== 0) {
    // "credentials not found" is not an error: fall back to the next source.
    if (/not found/i.test(result.stdout + result.stderr)) return undefined;
    throw new UserError(
      `the credential helper ${program} (named in ${configPath}) could not give credentials for ${serverUrl} (exit code ${result.exitCode})`,
      (result.stderr || result.stdout).trim().slice(0, 500),
    );
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new UserError(`the credential helper ${program} printed something that is not JSON`);
  }
  if (!parsed.Secret) return undefined;
  maskSecret(parsed.Secret);
  const origin = `credential helper ${program}`;
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret, origin };
  return { username: parsed.Username, password: parsed.Secret, origin };
}

/**
 * Finds credentials for `registry`: explicit username/password first, else the
 * Docker config (credHelpers for the host, then credsStore, then `auths`).
 * Returns undefined for anonymous access.
 */
export async function resolveCredentials(opts: CredentialOptions): Promise<Credentials | undefined> {
  const { host } = parseRegistry(opts.registry);
  if (opts.username || opts.password) {
    if (!opts.username || !opts.password) {
      throw new UserError(`both a username and a password (or token) are needed to log in to ${host}; only the ${opts.username ? 'username' : 'password'} was given`);
    }
    maskSecret(opts.password);
    return { username: opts.username, password: opts.password, origin: 'the given username and password' };
  }
  const explicit = opts.dockerConfigPath !== undefined && opts.dockerConfigPath !== '';
  const configPath = explicit
    ? opts.dockerConfigPath!
    : process.env.DOCKER_CONFIG
      ? join(process.env.DOCKER_CONFIG, 'config.json')
      : join(homedir(), '.docker', 'config.json');
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    if (explicit) throw new UserError(`could not read the Docker config ${configPath}: ${(err as Error).message}`);
    return undefined;
  }
  let config: DockerConfig;
  try {
    config = JSON.parse(text) as DockerConfig;
  } catch {
    throw new UserError(`the Docker config ${configPath} is not valid JSON`);
  }
  const hub = isDockerHub(host);
  const wanted = hub ? ['index.docker.io', 'docker.io', 'registry-1.docker.io'] : [host.toLowerCase()];
  const serverUrl = hub ? 'https://index.docker.io/v1/' : host;

  const helpers = config.credHelpers ?? {};
  const helperKey = Object.keys(helpers).find((k) => wanted.includes(configKeyHost(k)));
  if (helperKey) {
    const creds = await fromHelper(helpers[helperKey], serverUrl, configPath);
    if (creds) return creds;
  }
  if (config.credsStore) {
    const creds = await fromHelper(config.credsStore, serverUrl, configPath, true);
    if (creds) return creds;
  }
  const auths = config.auths ?? {};
  const authKey = Object.keys(auths).find((k) => wanted.includes(configKeyHost(k)));
  if (authKey) {
    const entry = auths[authKey];
    const origin = `the Docker config ${configPath}`;
    if (entry.identitytoken) {
      maskSecret(entry.identitytoken);
      return { identityToken: entry.identitytoken, origin };
    }
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw new UserError(`the "auth" entry for ${authKey} in ${configPath} is not base64 of "user:password"`);
      const password = decoded.slice(colon + 1);
      maskSecret(password);
      maskSecret(entry.auth);
      return { username: decoded.slice(0, colon), password, origin };
    }
    if (entry.username && entry.password) {
      maskSecret(entry.password);
      return { username: entry.username, password: entry.password, origin };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// the client

export interface RegistryClientOptions {
  registry: string;
  repository: string;
  credentials?: Credentials;
  /** PEM file of a CA to trust on top of the system ones. */
  caFile?: string;
  /** PEM text of a CA (instead of caFile). */
  ca?: string | Buffer;
  /** Allow plain HTTP and skip TLS verification for a non-loopback registry. */
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

interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface RequestSpec {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Leave out the Authorization header (cross-origin redirects, pings). */
  noAuth?: boolean;
}

/** A failure that another try may cure. */
class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList].join(', ');
const MAX_BODY = 1024 * 1024 * 1024;

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The registry's error text, cut short: `errors[].code: message` when it is the standard JSON. */
export function registryErrorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  if (!text) return '';
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => [e.code, e.message].filter(Boolean).join(': ') + (e.detail !== undefined ? ` (${JSON.stringify(e.detail).slice(0, 300)})` : ''))
        .join('; ')
        .slice(0, 2000);
    }
  } catch {
    // not JSON
  }
  return text.slice(0, 2000);
}

export class RegistryClient {
  readonly address: RegistryAddress;
  readonly repository: string;
  private readonly credentials?: Credentials;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly chunkThreshold: number;
  private readonly chunkSize: number;
  private readonly insecure: boolean;
  private readonly log: (m: string) => void;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly caOption?: string | Buffer;
  private readonly caFile?: string;
  private httpsAgent?: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private scheme?: 'http' | 'https';
  private auth: { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service?: string } = { kind: 'none' };
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(opts: RegistryClientOptions) {
    this.address = parseRegistry(opts.registry);
    validateRepository(opts.repository);
    this.repository = isDockerHub(this.address.host) && !opts.repository.includes('/') ? `library/${opts.repository}` : opts.repository;
    this.credentials = opts.credentials;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    if (this.retry.attempts < 1) this.retry.attempts = 1;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.chunkThreshold = opts.chunkThresholdBytes ?? 32 * 1024 * 1024;
    this.chunkSize = Math.max(1, opts.chunkSizeBytes ?? 8 * 1024 * 1024);
    this.insecure = !!opts.insecure;
    this.log = opts.log ?? ((m) => core.info(m));
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.caOption = opts.ca;
    this.caFile = opts.caFile;
    if (this.address.scheme === 'http' && !this.plainHttpAllowed()) {
      throw new UserError(
        `refusing plain HTTP to ${this.address.host}: it is not a loopback address; use https, or allow insecure registries explicitly`,
      );
    }
  }

  private plainHttpAllowed(): boolean {
    return this.insecure || isLoopbackHost(this.address.apiHost);
  }

  private who(): string {
    if (!this.credentials) return 'anonymous access (no credentials were found)';
    if (this.credentials.username) return `user "${this.credentials.username}" (from ${this.credentials.origin})`;
    return `the identity token from ${this.credentials.origin}`;
  }

  private get ref(): string {
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
          throw new UserError(`could not read the CA certificate file ${this.caFile}: ${(err as Error).message}`);
        }
      }
      this.httpsAgent = new https.Agent({
        keepAlive: true,
        maxSockets: 4,
        ca: extra ? [...tls.rootCertificates, extra.toString()] : undefined,
        rejectUnauthorized: !this.insecure,
      });
    }
    return this.httpsAgent;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent?.destroy();
  }

  // -- transport ------------------------------------------------------------

  /** One HTTP exchange, body read in full. Network failures reject. */
  private async exchange(spec: RequestSpec): Promise<HttpResponse> {
    const scheme = spec.url.protocol === 'http:' ? 'http' : 'https';
    const agent = await this.agentFor(scheme);
    const mod = scheme === 'http' ? http : https;
    const headers: Record<string, string> = { 'User-Agent': 'asm-wasm-action', ...spec.headers };
    if (spec.body) headers['Content-Length'] = String(spec.body.length);
    else if (spec.method === 'PUT' || spec.method === 'POST' || spec.method === 'PATCH') headers['Content-Length'] = '0';
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = mod.request(spec.url, { method: spec.method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (c: Buffer) => {
          total += c.length;
          if (total > MAX_BODY) {
            req.destroy(new Error('response too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
        res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
      });
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', reject);
      req.end(spec.body);
    });
  }

  private base(): string {
    const scheme = this.scheme ?? this.address.scheme ?? 'https';
    return `${scheme}://${this.address.apiHost}`;
  }

  private url(path: string): URL {
    return new URL(`${this.base()}${path}`);
  }

  private get defaultScope(): string {
    return `repository:${this.repository}:pull,push`;
  }

  private async authorization(scope: string): Promise<string | undefined> {
    const c = this.credentials;
    if (this.auth.kind === 'basic') {
      if (!c?.username || !c.password) return undefined;
      const value = Buffer.from(`${c.username}:${c.password}`).toString('base64');
      maskSecret(value);
      return `Basic ${value}`;
    }
    if (this.auth.kind === 'bearer') return `Bearer ${await this.token(scope)}`;
    return undefined;
  }

  /** Sends with auth; answers one 401 challenge by (re)authenticating, then sends again. */
  private async authorized(spec: RequestSpec, scope: string): Promise<HttpResponse> {
    const sameOrigin = spec.url.origin === new URL(this.base()).origin;
    const withAuth = async (): Promise<HttpResponse> => {
      const headers = { ...spec.headers };
      if (!spec.noAuth && sameOrigin) {
        const value = await this.authorization(scope);
        if (value) headers.Authorization = value;
      }
      return this.exchange({ ...spec, headers });
    };
    let res = await withAuth();
    if (res.status === 401 && !spec.noAuth && sameOrigin) {
      const challenge = header(res, 'www-authenticate');
      if (challenge && this.adoptChallenge(challenge, scope)) res = await withAuth();
    }
    return res;
  }

  /**
   * Takes in a challenge. Returns true when something changed that makes a
   * new try worthwhile (a new scheme, or a token for a wider scope).
   */
  private adoptChallenge(headerValue: string, scope: string): boolean {
    const challenges = parseWwwAuthenticate(headerValue);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer && bearer.params.realm) {
      const was = this.auth;
      this.auth = { kind: 'bearer', realm: bearer.params.realm, service: bearer.params.service };
      if (was.kind !== 'bearer') return true;
      // same scheme: our token did not cover the request; drop it and ask again once
      return this.tokens.delete(scope) || (bearer.params.scope !== undefined && this.tokens.delete(bearer.params.scope));
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (this.auth.kind === 'basic' || !this.credentials?.username) {
        this.auth = { kind: 'basic' };
        return false;
      }
      this.auth = { kind: 'basic' };
      return true;
    }
    return false;
  }

  /** A Bearer token for `scope`, from the cache or the challenge's realm. */
  private async token(scope: string): Promise<string> {
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt > Date.now() + 10_000) return cached.token;
    if (this.auth.kind !== 'bearer') throw new Error('token requested without a Bearer challenge');
    const { realm, service } = this.auth;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new UserError(`registry ${this.address.host} sent an unusable token realm "${realm}"`);
    }
    if (realmUrl.protocol === 'http:' && !(this.insecure || isLoopbackHost(realmUrl.host))) {
      throw new UserError(`registry ${this.address.host} asks for credentials over plain HTTP (${realmUrl.origin}); refusing to send them`);
    }
    if (realmUrl.protocol !== 'http:' && realmUrl.protocol !== 'https:') {
      throw new UserError(`registry ${this.address.host} sent a token realm with an unsupported scheme: ${realmUrl.protocol}`);
    }
    const c = this.credentials;
    let spec: RequestSpec;
    if (c?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'asm-wasm-action', scope });
      if (service) form.set('service', service);
      spec = {
        method: 'POST',
        url: realmUrl,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        noAuth: true,
      };
    } else {
      const u = new URL(realmUrl.href);
      if (service) u.searchParams.set('service', service);
      u.searchParams.set('scope', scope);
      const headers: Record<string, string> = {};
      if (c?.username && c.password) headers.Authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      spec = { method: 'GET', url: u, headers, noAuth: true };
    }
    const res = await this.withRetries(`getting a token from ${realmUrl.origin}`, async () => {
      const r = await this.exchange(spec);
      if (isRetryableStatus(r.status)) throw new TransientError(`token service answered HTTP ${r.status}`, parseRetryAfter(header(r, 'retry-after')));
      return r;
    });
    if (res.status === 401 || res.status === 403) {
      throw new UserError(
        `the token service of registry ${this.address.host} refused ${this.who()} for repository ${this.repository} (HTTP ${res.status}): check the username and password (or token), and that this user may push to ${this.repository}`,
        registryErrorText(res.body) || undefined,
      );
    }
    if (res.status !== 200) {
      throw new UserError(`the token service of registry ${this.address.host} answered HTTP ${res.status}`, registryErrorText(res.body) || undefined);
    }
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as typeof parsed;
    } catch {
      throw new UserError(`the token service of registry ${this.address.host} did not answer with JSON`);
    }
    const token = parsed.token || parsed.access_token;
    if (!token) throw new UserError(`the token service of registry ${this.address.host} answered without a token`);
    maskSecret(token);
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    this.tokens.set(scope, { token, expiresAt: Date.now() + lifetime * 1000 });
    return token;
  }

  /** Runs `fn` up to `attempts` times while it fails with something transient. */
  private async withRetries<T>(action: string, fn: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      try {
        return await fn();
      } catch (err) {
        last = err;
        const transient = err instanceof TransientError || isRetryableNetworkError(err);
        if (!transient || attempt === this.retry.attempts) break;
        const delay = backoffDelay(attempt, this.retry, err instanceof TransientError ? err.retryAfterMs : undefined);
        this.log(`${action}: ${describe(err)}; trying again in ${delay} ms (${attempt}/${this.retry.attempts - 1})`);
        await this.sleep(delay);
      }
    }
    const final = this.finalError(action, last);
    if (final !== last) Object.assign(final, { cause: last });
    throw final;
  }

  private finalError(action: string, err: unknown): Error {
    if (err instanceof UserError) return err;
    if (err instanceof TransientError) {
      return new UserError(`registry ${this.address.host} kept failing while ${action} for ${this.ref}: ${err.message} (gave up after ${this.retry.attempts} tries)`);
    }
    if (isTlsVerifyError(err)) {
      return new UserError(
        `could not verify the TLS certificate of registry ${this.address.host} (${(err as NodeJS.ErrnoException).code}): give the CA certificate that signed it (ca-file), or fix the registry's certificate`,
      );
    }
    if (isTlsProtocolError(err)) {
      return new UserError(
        `registry ${this.address.host} does not speak TLS (${describe(err)}): if it really serves plain HTTP, allow insecure registries for it`,
      );
    }
    if (isRetryableNetworkError(err)) {
      return new UserError(
        `could not reach registry ${this.address.host} while ${action} (${describe(err)}; gave up after ${this.retry.attempts} tries): check the registry address and that it is running and reachable`,
      );
    }
    const e = err as NodeJS.ErrnoException;
    return new UserError(`request to registry ${this.address.host} failed while ${action}: ${describe(e)}`);
  }

  /**
   * Sends a request with auth and retries. Retryable statuses become
   * retries; the last answer (whatever its status) is returned.
   */
  private async send(action: string, spec: RequestSpec, scope = this.defaultScope): Promise<HttpResponse> {
    let lastRetryable: HttpResponse | undefined;
    try {
      return await this.withRetries(action, async () => {
        const res = await this.authorized(spec, scope);
        if (isRetryableStatus(res.status)) {
          lastRetryable = res;
          throw new TransientError(`HTTP ${res.status}${bodyHint(res)}`, parseRetryAfter(header(res, 'retry-after')));
        }
        return res;
      });
    } catch (err) {
      if (lastRetryable && err instanceof UserError && /kept failing/.test(err.message)) {
        throw new UserError(err.message, registryErrorText(lastRetryable.body) || undefined);
      }
      throw err;
    }
  }

  private authError(res: HttpResponse, action: string): UserError {
    const base = `registry ${this.address.host} refused ${this.who()} for repository ${this.repository} while ${action} (HTTP ${res.status})`;
    const advice =
      res.status === 401
        ? 'check the username and password (or token) and that they belong to this registry'
        : `check that this user may push to ${this.repository} (and that the repository exists, if the registry does not create it on push)`;
    return new UserError(`${base}: ${advice}`, registryErrorText(res.body) || undefined);
  }

  private unexpected(res: HttpResponse, action: string): UserError {
    if (res.status === 401 || res.status === 403) return this.authError(res, action);
    return new UserError(`registry ${this.address.host} answered HTTP ${res.status} while ${action} for ${this.ref}`, registryErrorText(res.body) || undefined);
  }

  // -- API --------------------------------------------------------------------

  /**
   * GET /v2/: picks the scheme (https, or plain http where allowed and the
   * server does not speak TLS) and learns how the registry authenticates.
   */
  async ping(): Promise<void> {
    const candidates: Array<'http' | 'https'> = this.address.scheme
      ? [this.address.scheme]
      : this.plainHttpAllowed()
        ? ['https', 'http']
        : ['https'];
    let lastErr: unknown;
    for (const scheme of candidates) {
      this.scheme = scheme;
      try {
        const res = await this.withRetries(`connecting to ${scheme}://${this.address.apiHost}`, async () => {
          const r = await this.exchange({ method: 'GET', url: this.url('/v2/') });
          if (isRetryableStatus(r.status)) throw new TransientError(`HTTP ${r.status}`, parseRetryAfter(header(r, 'retry-after')));
          return r;
        });
        if (res.status === 401) {
          const challenge = header(res, 'www-authenticate');
          if (challenge) this.adoptChallenge(challenge, this.defaultScope);
          if (this.auth.kind === 'basic' && !this.credentials?.username) {
            throw new UserError(
              `registry ${this.address.host} needs a login (Basic auth) and no credentials were found: give a username and password, or log in with docker login`,
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
        if (scheme === 'https' && candidates.includes('http') && isTlsProtocolError(cause)) {
          continue;
        }
        throw err;
      }
    }
    throw lastErr;
  }

  private repoPath(kind: 'blobs' | 'manifests', ref: string): string {
    return `/v2/${this.repository}/${kind}/${ref}`;
  }

  async blobExists(digest: string): Promise<boolean> {
    const action = `checking blob ${digest}`;
    const res = await this.send(action, { method: 'HEAD', url: this.url(this.repoPath('blobs', digest)) });
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw this.unexpected(res, action);
  }

  /** Uploads one blob (a new upload session on each retry). */
  async uploadBlob(blob: { digest: string; data: Buffer }): Promise<void> {
    const action = `uploading blob ${blob.digest} (${blob.data.length} bytes)`;
    await this.withRetries(action, async () => {
      const start = await this.authorized({ method: 'POST', url: this.url(`/v2/${this.repository}/blobs/uploads/`) }, this.defaultScope);
      this.check(start, [202], action);
      let location = this.location(start, action);
      if (blob.data.length > this.chunkThreshold) {
        for (let offset = 0; offset < blob.data.length; offset += this.chunkSize) {
          const chunk = blob.data.subarray(offset, Math.min(offset + this.chunkSize, blob.data.length));
          const res = await this.authorized(
            {
              method: 'PATCH',
              url: location,
              headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` },
              body: chunk,
            },
            this.defaultScope,
          );
          this.check(res, [202], action);
          location = this.location(res, action);
        }
        const done = await this.authorized({ method: 'PUT', url: withDigest(location, blob.digest), headers: { 'Content-Type': 'application/octet-stream' } }, this.defaultScope);
        this.check(done, [201], action);
        this.checkDigestHeader(done, blob.digest, action);
      } else {
        const done = await this.authorized(
          { method: 'PUT', url: withDigest(location, blob.digest), headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data },
          this.defaultScope,
        );
        this.check(done, [201], action);
        this.checkDigestHeader(done, blob.digest, action);
      }
    });
  }

  private check(res: HttpResponse, ok: number[], action: string): void {
    if (ok.includes(res.status)) return;
    if (isRetryableStatus(res.status)) throw new TransientError(`HTTP ${res.status}${bodyHint(res)}`, parseRetryAfter(header(res, 'retry-after')));
    throw this.unexpected(res, action);
  }

  private checkDigestHeader(res: HttpResponse, digest: string, action: string): void {
    const got = header(res, 'docker-content-digest');
    if (got && got !== digest) throw new UserError(`registry ${this.address.host} stored ${got} while ${action}: the content changed on the way`);
  }

  private location(res: HttpResponse, action: string): URL {
    const loc = header(res, 'location');
    if (!loc) throw new UserError(`registry ${this.address.host} gave no upload location while ${action}`);
    return new URL(loc, this.base());
  }

  /** The digest a tag (or digest) resolves to, or undefined when it does not exist. */
  async resolve(reference: string): Promise<string | undefined> {
    const action = `looking up ${this.ref}:${reference}`;
    const spec: RequestSpec = { method: 'HEAD', url: this.url(this.repoPath('manifests', reference)), headers: { Accept: MANIFEST_ACCEPT } };
    const res = await this.send(action, spec);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.unexpected(res, action);
    const digest = header(res, 'docker-content-digest');
    if (digest) return digest;
    const full = await this.send(action, { ...spec, method: 'GET' });
    if (full.status !== 200) throw this.unexpected(full, action);
    return sha256Digest(full.body);
  }

  /** PUTs a manifest's exact bytes under `reference`; returns the digest the registry reports. */
  async putManifest(reference: string, manifest: Buffer, mediaType: string): Promise<string> {
    const action = `pushing the manifest to ${this.ref}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const res = await this.send(action, {
      method: 'PUT',
      url: this.url(this.repoPath('manifests', reference)),
      headers: { 'Content-Type': mediaType },
      body: manifest,
    });
    if (res.status === 401 || res.status === 403) throw this.authError(res, action);
    if (res.status !== 201 && res.status !== 200) {
      throw new UserError(`registry ${this.address.host} rejected the manifest for ${this.ref} (HTTP ${res.status}) while ${action}`, registryErrorText(res.body) || '(empty answer)');
    }
    const expected = sha256Digest(manifest);
    const got = header(res, 'docker-content-digest');
    if (got && got !== expected) {
      throw new UserError(`registry ${this.address.host} stored the manifest as ${got}, but its bytes have digest ${expected}: the registry rewrote it`);
    }
    return got ?? expected;
  }

  async getManifest(digest: string): Promise<Buffer> {
    const action = `reading back the manifest ${this.ref}@${digest}`;
    const res = await this.send(action, { method: 'GET', url: this.url(this.repoPath('manifests', digest)), headers: { Accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw this.unexpected(res, action);
    return res.body;
  }

  async getBlob(digest: string): Promise<Buffer> {
    const action = `reading back blob ${digest}`;
    let url = this.url(this.repoPath('blobs', digest));
    for (let hop = 0; hop < 6; hop++) {
      const res = await this.send(action, { method: 'GET', url });
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        const loc = header(res, 'location');
        if (!loc) break;
        url = new URL(loc, url);
        continue;
      }
      if (res.status !== 200) throw this.unexpected(res, action);
      return res.body;
    }
    throw new UserError(`registry ${this.address.host} redirected too often while ${action}`);
  }

  /** This repository as a gate source (reads by digest). */
  source(): ImageSource {
    return {
      name: this.ref,
      getManifest: (d) => this.getManifest(d),
      getBlob: (d) => this.getBlob(d),
    };
  }
}

function withDigest(location: URL, digest: string): URL {
  const u = new URL(location.href);
  u.search = `${u.search ? `${u.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
  return u;
}

function bodyHint(res: HttpResponse): string {
  const t = registryErrorText(res.body);
  return t ? ` (${t.slice(0, 200)})` : '';
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e) return 'unknown error';
  if (e.code && !e.message?.includes(e.code)) return `${e.code} ${e.message}`;
  return e.message ?? String(err);
}
