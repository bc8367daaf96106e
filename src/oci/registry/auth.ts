// Who the registry client is: credentials (registry-username and
// registry-password, else the Docker config: credHelpers, credsStore,
// auths), the WWW-Authenticate challenge, and Bearer tokens from the
// challenge's realm, cached per scope. Every secret is masked before it
// could be printed.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { log } from '../../log.js';
import { UserError } from '../../errors.js';
import { run } from '../../exec.js';
import { maskSecret } from '../../github.js';
import type { HttpResponse } from '../../net/index.js';
import { isDockerHub, isLoopbackHost, parseRegistry, registryErrorText } from './names.js';
import type { RequestSpec } from './connection.js';

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
      log.info(`credsStore "${helper}" in ${configPath} is not usable here (${program} could not be started); looking at "auths"`);
      return undefined;
    }
    throw err;
  }
  if (result.exitCode !== 0) {
    // "credentials not found" is the helper protocol's answer for "none for
    // this server" (its only way to say so is this text): not an error, fall
    // back to the next source.
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
      throw new UserError(
        `both registry-username and registry-password (a password or token) are needed to log in to ${host}; only ${opts.username ? 'registry-username' : 'registry-password'} was given`,
      );
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
    if (explicit) throw new UserError(`could not read the Docker config ${configPath} (docker-config): ${(err as Error).message}`);
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

export interface AuthContext {
  host: string;
  repository: string;
  credentials?: Credentials;
  insecure: boolean;
  /** "user "u" (from …)", for messages. */
  who: () => string;
  /** One exchange without Authorization, tried again on transient faults (a UserError once they run out). */
  fetch: (action: string, spec: RequestSpec) => Promise<HttpResponse>;
}

/** The registry's auth scheme as learnt from its challenges, and the tokens it handed out. */
export class Authenticator {
  private scheme: { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service?: string } = { kind: 'none' };
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(private readonly ctx: AuthContext) {}

  /** True when the registry asked for Basic auth and there is no username to give. */
  get needsMissingLogin(): boolean {
    return this.scheme.kind === 'basic' && !this.ctx.credentials?.username;
  }

  /** The Authorization header for `scope`, or undefined (anonymous). */
  async authorization(scope: string): Promise<string | undefined> {
    const c = this.ctx.credentials;
    if (this.scheme.kind === 'basic') {
      if (!c?.username || !c.password) return undefined;
      const value = Buffer.from(`${c.username}:${c.password}`).toString('base64');
      maskSecret(value);
      return `Basic ${value}`;
    }
    if (this.scheme.kind === 'bearer') return `Bearer ${await this.token(scope)}`;
    return undefined;
  }

  /**
   * Takes in a challenge. Returns true when something changed that makes a
   * new try worthwhile (a new scheme, or a token for a wider scope).
   */
  adoptChallenge(headerValue: string, scope: string): boolean {
    const challenges = parseWwwAuthenticate(headerValue);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer && bearer.params.realm) {
      const was = this.scheme;
      this.scheme = { kind: 'bearer', realm: bearer.params.realm, service: bearer.params.service };
      if (was.kind !== 'bearer') return true;
      // same scheme: our token did not cover the request; drop it and ask again once
      return this.tokens.delete(scope) || (bearer.params.scope !== undefined && this.tokens.delete(bearer.params.scope));
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (this.scheme.kind === 'basic' || !this.ctx.credentials?.username) {
        this.scheme = { kind: 'basic' };
        return false;
      }
      this.scheme = { kind: 'basic' };
      return true;
    }
    return false;
  }

  /** A Bearer token for `scope`, from the cache or the challenge's realm. */
  private async token(scope: string): Promise<string> {
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt > Date.now() + 10_000) return cached.token;
    if (this.scheme.kind !== 'bearer') throw new Error('token requested without a Bearer challenge');
    const { realm, service } = this.scheme;
    const { host, repository } = this.ctx;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new UserError(`registry ${host} sent an unusable token realm "${realm}"`);
    }
    if (realmUrl.protocol === 'http:' && !(this.ctx.insecure || isLoopbackHost(realmUrl.host))) {
      throw new UserError(`registry ${host} asks for credentials over plain HTTP (${realmUrl.origin}); refusing to send them`);
    }
    if (realmUrl.protocol !== 'http:' && realmUrl.protocol !== 'https:') {
      throw new UserError(`registry ${host} sent a token realm with an unsupported scheme: ${realmUrl.protocol}`);
    }
    const c = this.ctx.credentials;
    let spec: RequestSpec;
    if (c?.identityToken) {
      // A POST, but one that creates nothing: asking again for a token is safe.
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
    const res = await this.ctx.fetch(`getting a token from ${realmUrl.origin}`, spec);
    if (res.status === 401 || res.status === 403) {
      throw new UserError(
        `the token service of registry ${host} refused ${this.ctx.who()} for repository ${repository} (HTTP ${res.status}): check the username and password (or token), and that this user may push to ${repository}`,
        registryErrorText(res.body) || undefined,
      );
    }
    if (res.status !== 200) {
      throw new UserError(`the token service of registry ${host} answered HTTP ${res.status}`, registryErrorText(res.body) || undefined);
    }
    let parsed: { token?: string; access_token?: string; expires_in?: number };
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as typeof parsed;
    } catch {
      throw new UserError(`the token service of registry ${host} did not answer with JSON`);
    }
    const token = parsed.token || parsed.access_token;
    if (!token) throw new UserError(`the token service of registry ${host} answered without a token`);
    maskSecret(token);
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    this.tokens.set(scope, { token, expiresAt: Date.now() + lifetime * 1000 });
    return token;
  }
}
