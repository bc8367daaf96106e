// Reads the kubeconfig the user keeps in a GitHub secret: raw YAML (or JSON)
// or base64 of it. Every credential in it is registered as a secret before
// anything else happens, so no later log line can show it, and no error
// message quotes the kubeconfig's text.
import { KubeConfig } from '@kubernetes/client-node';
import YAML, { YAMLError } from 'yaml';
import { maskSecret } from '../github.js';
import { UserError } from '../errors.js';

export interface KubeconfigOptions {
  /** The context to use; default the kubeconfig's current-context. */
  context?: string;
  /** What the kubeconfig is called in messages (default `kubeconfig`, e.g. `cluster-kubeconfig`). */
  inputName?: string;
  /** Registers a value to be masked in logs; default maskSecret. */
  setSecret?: (value: string) => void;
}

export interface LoadedKubeconfig {
  /** The client's configuration, with the chosen context as the current one. */
  kubeConfig: KubeConfig;
  /** How the secret was given. */
  format: 'yaml' | 'base64';
  context: string;
  cluster: string;
  /** The API server's URL as shown in messages: without any user:password@. */
  server: string;
  /** The URL requests go to (may carry userinfo, which is masked). */
  requestServer: string;
  user: string;
  /** Registers a credential the client learns later (a token from an exec plugin or auth provider). */
  setSecret: (value: string) => void;
  /** The context's default namespace, if it sets one. */
  namespace?: string;
  /** What the kubeconfig is called in messages. */
  inputName: string;
}

/** Keys under a kubeconfig user whose values are credentials. */
const SECRET_KEY = /token|secret|password|passwd|key|credential|cookie/i;

/**
 * Registers `value`; with `lines`, each of its lines too (the runner masks a
 * multi-line secret only as a whole); with `decode`, the text base64 `value`
 * decodes to, and its lines.
 */
function maskValue(setSecret: (value: string) => void, value: string, options: { lines: boolean; decode?: boolean }): void {
  const seen = new Set<string>();
  const add = (v: string) => {
    const s = v.trim();
    // Very short strings would mask unrelated text everywhere in the log.
    if (s.length < 6 || seen.has(s)) return;
    seen.add(s);
    setSecret(s);
  };
  const addWithLines = (v: string) => {
    add(v);
    if (options.lines && v.includes('\n')) {
      for (const line of v.split(/\r?\n/)) if (!/^-----(BEGIN|END) /.test(line.trim())) add(line);
    }
  };
  addWithLines(value);
  if (options.decode) {
    const decoded = decodeBase64(value);
    if (decoded !== undefined) addWithLines(decoded);
  }
}

/** Registers every credential found under a kubeconfig `users[].user` entry. */
function maskUser(setSecret: (value: string) => void, node: unknown, key = '', underEnv = false): void {
  if (typeof node === 'string') {
    if (underEnv || SECRET_KEY.test(key)) maskValue(setSecret, node, { lines: true, decode: key.endsWith('-data') });
    return;
  }
  if (Array.isArray(node)) {
    for (const item of node) maskUser(setSecret, item, key, underEnv);
    return;
  }
  if (node && typeof node === 'object') {
    const entries = Object.entries(node as Record<string, unknown>);
    for (const [k, v] of entries) {
      // exec plugins take credentials through env: [{name, value}]; mask the values.
      if (underEnv && k === 'name') continue;
      maskUser(setSecret, v, underEnv ? 'value' : k, underEnv || k === 'env');
    }
  }
}

function decodeBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!compact || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  const buf = Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  const decoded = buf.toString('utf8');
  // Not text (or not base64 at all): the round trip does not hold.
  if (decoded.includes('\uFFFD')) return undefined;
  return decoded;
}

/** Position of a YAML error without the source excerpt the library adds (it could show a credential). */
function yamlErrorWhere(err: unknown, text: string): string {
  if (err instanceof YAMLError) {
    const what = err.code.toLowerCase().replace(/_/g, ' ');
    const offset = err.pos?.[0];
    if (offset === undefined) return what;
    const before = text.slice(0, offset).split('\n');
    return `${what} at line ${before.length}, column ${before[before.length - 1].length + 1}`;
  }
  return 'cannot be parsed';
}

function isKubeconfigObject(value: unknown): value is Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return 'clusters' in v || 'contexts' in v || 'users' in v || v.kind === 'Config';
}

/**
 * Parses a kubeconfig given as YAML/JSON or base64, masks its credentials and
 * selects the context. Throws a UserError naming what is wrong.
 */
export function loadKubeconfig(input: string, options: KubeconfigOptions = {}): LoadedKubeconfig {
  const setSecret = options.setSecret ?? maskSecret;
  const inputName = options.inputName ?? 'kubeconfig';
  const text = input.trim();
  if (!text) {
    throw new UserError(
      `${inputName} is empty: set it to the content of the kubeconfig secret (secrets are not passed to workflows run from forks)`,
    );
  }
  // Before anything can be logged: the whole value (and the lines of wrapped
  // base64; never the lines of YAML, which would mask words like `clusters:`
  // everywhere), then each credential.
  maskValue(setSecret, text, { lines: decodeBase64(text) !== undefined });

  let format: 'yaml' | 'base64' = 'yaml';
  let parsed: unknown;
  let yamlError: unknown;
  try {
    parsed = YAML.parse(text, { prettyErrors: false });
  } catch (err) {
    yamlError = err;
  }
  if (!isKubeconfigObject(parsed)) {
    const decoded = decodeBase64(text);
    if (decoded !== undefined) {
      maskValue(setSecret, decoded, { lines: false });
      format = 'base64';
      try {
        parsed = YAML.parse(decoded, { prettyErrors: false });
      } catch (err) {
        throw new UserError(`${inputName} is base64, but what it decodes to is not valid YAML (${yamlErrorWhere(err, decoded)})`);
      }
      if (!isKubeconfigObject(parsed)) {
        throw new UserError(
          `${inputName} is base64, but it does not decode to a kubeconfig (no clusters, contexts or users): ` +
            'encode the kubeconfig file itself, e.g. `base64 -w0 ~/.kube/config`',
        );
      }
    } else if (yamlError !== undefined) {
      throw new UserError(`${inputName} is neither a kubeconfig nor base64 of one: the YAML has an error: ${yamlErrorWhere(yamlError, text)}`);
    } else {
      throw new UserError(
        `${inputName} is neither a kubeconfig nor base64 of one: expected YAML with clusters, contexts and users ` +
          '(paste the whole kubeconfig file, or its base64)',
      );
    }
  }
  const doc = parsed as Record<string, unknown>;
  for (const entry of asArray(doc.users)) {
    const user = (entry as Record<string, unknown> | null)?.user;
    if (user) maskUser(setSecret, user);
  }

  const contexts = asArray(doc.contexts).filter(named) as { name: string; context?: Record<string, unknown> }[];
  const clusters = asArray(doc.clusters).filter(named) as { name: string; cluster?: Record<string, unknown> }[];
  const users = asArray(doc.users).filter(named) as { name: string; user?: Record<string, unknown> }[];
  const names = (list: { name: string }[]) => (list.length ? list.map((c) => `"${c.name}"`).join(', ') : 'none');

  let contextName = options.context?.trim() || '';
  if (contextName) {
    if (!contexts.some((c) => c.name === contextName)) {
      throw new UserError(`${inputName} has no context "${contextName}" (its contexts: ${names(contexts)})`);
    }
  } else {
    const current = typeof doc['current-context'] === 'string' ? (doc['current-context'] as string) : '';
    if (current) {
      if (!contexts.some((c) => c.name === current)) {
        throw new UserError(
          `${inputName}'s current-context "${current}" is not one of its contexts (${names(contexts)}): set the context input`,
        );
      }
      contextName = current;
    } else if (contexts.length === 1) {
      contextName = contexts[0].name;
    } else {
      throw new UserError(
        contexts.length === 0
          ? `${inputName} has no contexts`
          : `${inputName} sets no current-context and has ${contexts.length} contexts (${names(contexts)}): set the context input`,
      );
    }
  }
  const context = contexts.find((c) => c.name === contextName)!.context ?? {};
  const clusterName = String(context.cluster ?? '');
  const userName = String(context.user ?? '');
  const cluster = clusters.find((c) => c.name === clusterName);
  if (!cluster) {
    throw new UserError(`${inputName}'s context "${contextName}" names cluster "${clusterName}", which it does not define (${names(clusters)})`);
  }
  const server = typeof cluster.cluster?.server === 'string' ? cluster.cluster.server.trim() : '';
  if (!server) throw new UserError(`${inputName}'s cluster "${clusterName}" has no server address`);
  let shownServer: string;
  try {
    const url = new URL(server);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(url.protocol);
    // user:password@ in the server URL is a credential: masked, and never shown.
    for (const part of [url.username, url.password]) {
      if (!part) continue;
      setSecret(part);
      setSecret(decodeURIComponent(part));
    }
    url.username = '';
    url.password = '';
    shownServer = url.href.replace(/\/$/, server.endsWith('/') ? '/' : '');
  } catch {
    throw new UserError(`${inputName}'s cluster "${clusterName}" has a server address that is not an http(s) URL: ${withoutUserinfo(server)}`);
  }
  if (userName && !users.some((u) => u.name === userName)) {
    throw new UserError(`${inputName}'s context "${contextName}" names user "${userName}", which it does not define (${names(users)})`);
  }
  const caData = cluster.cluster?.['certificate-authority-data'];
  if (typeof caData === 'string' && !decodeBase64(caData)?.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UserError(`${inputName}'s cluster "${clusterName}" has a certificate-authority-data that is not base64 of a PEM certificate`);
  }

  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromString(JSON.stringify(doc), { onInvalidEntry: 'filter' });
    kubeConfig.setCurrentContext(contextName);
  } catch (err) {
    // The client's messages name fields, not values.
    throw new UserError(`${inputName} is not a valid kubeconfig: ${(err as Error).message}`);
  }
  if (!kubeConfig.getCurrentCluster() || (userName && !kubeConfig.getCurrentUser())) {
    throw new UserError(`${inputName}'s context "${contextName}" refers to a cluster or user entry that is incomplete`);
  }
  const namespace = typeof context.namespace === 'string' && context.namespace ? context.namespace : undefined;
  return { kubeConfig, format, context: contextName, cluster: clusterName, server: shownServer, requestServer: server, user: userName, namespace, inputName, setSecret };
}

/** A URL-ish text with anything between the scheme and an @ dropped. */
export function withoutUserinfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function named(value: unknown): boolean {
  return !!value && typeof value === 'object' && typeof (value as { name?: unknown }).name === 'string';
}
