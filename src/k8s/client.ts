// Requests to the Kubernetes API server, and the messages a user gets when one
// fails.
//
// Which client: @kubernetes/client-node 1.4 (it runs on Node 20; 2.x needs
// Node >= 22.19) reads the kubeconfig and turns it into TLS options and an
// Authorization header (tokens, client certificates, exec plugins, auth
// providers, tls-server-name, proxy-url). The requests themselves are made
// with the shared network layer (src/net: timeouts, retries, one table of
// connection and TLS errors), not with the client's generic
// KubernetesObjectApi: it looks the resource up through discovery on each
// call and wraps every failure in an ApiException whose body is an unparsed
// string, while this stage needs the
// exact status and Status object of each answer (401, 403, 404, 409 field
// conflicts, 422 causes) to tell the user what to fix, plus server-side apply
// with dryRun and force, which are two query parameters on a PATCH. No
// kubectl: nothing has to be installed on the runner and the kubeconfig never
// touches the disk.
import type * as http from 'node:http';
import type * as https from 'node:https';
import { UserError } from '../errors.js';
import { NetworkError, USER_AGENT, explain, formatTimeout, request, retryAfterOf, withRetries, type RetryPolicy } from '../net/index.js';
import type { LoadedKubeconfig } from './kubeconfig.js';

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under the server URL, starting with `/`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON (a string is sent as is). */
  body?: unknown;
  contentType?: string;
}

export interface KubeResponse {
  status: number;
  /** The parsed JSON body (a Kubernetes object or Status), or undefined. */
  body: any;
  text: string;
  headers?: http.IncomingHttpHeaders;
}

/** What a request was doing, to name it in errors. */
export interface RequestPurpose {
  /** RBAC verb: get, list, create, update, patch, delete. */
  verb: string;
  /** Resource with its group, e.g. `wasmplugins.extensions.istio.io`. */
  resource: string;
  namespace?: string;
  name?: string;
}

export interface KubeClientOptions {
  /** Per request, default 30 s. */
  timeoutMs?: number;
  /** Tries for a transient fault, default 4. */
  attempts?: number;
  /** First pause between tries, doubled each time; default 500 ms. */
  backoffMs?: number;
  /** Told about each retry (the deploy stage logs it). */
  onRetry?: (line: string) => void;
}

export { USER_AGENT };

/**
 * Answers worth another try: too many requests, and a server or proxy that is
 * briefly unwell. Narrower than the registry's (no 408, no other 5xx): these
 * are the ones the API server and its load balancers send when a repeat helps.
 */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** A connection that broke after it was made (a proxy or load balancer dropping it): the one network failure tried again. */
class ResetError extends UserError {}

export class KubeClient {
  private readonly timeoutMs: number;
  private readonly policy: RetryPolicy;
  private readonly onRetry?: (line: string) => void;

  constructor(
    readonly config: LoadedKubeconfig,
    options: KubeClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    // 0.5, 1, 2 s between 4 tries, or the Retry-After the server asks for, up to 10 s.
    this.policy = { attempts: options.attempts ?? 4, baseDelayMs: options.backoffMs ?? 500, maxDelayMs: 8_000, maxRetryAfterMs: 10_000 };
    this.onRetry = options.onRetry;
  }

  /** "context "x" (https://host:6443)", for messages. */
  get where(): string {
    return `the API server ${this.config.server} (context "${this.config.context}")`;
  }

  /**
   * Sends a request and returns any HTTP answer; throws a UserError only when
   * there is no answer (unreachable, TLS, credentials that cannot be built).
   *
   * Transient faults are retried a bounded number of times: 429 (honouring
   * Retry-After), 500/502/503/504 and a connection reset. Only for requests
   * that are safe to repeat: GET, DELETE, a server-side apply PATCH (applying
   * the same configuration twice gives the same object) and a PUT carrying a
   * resourceVersion (a repeat after a lost answer is refused as a conflict,
   * never applied twice). A POST is sent once.
   */
  async send(req: KubeRequest): Promise<KubeResponse> {
    const { outcome } = await withRetries(() => this.sendOnce(req), {
      policy: this.policy,
      safeToRepeat: req.method !== 'POST',
      retryable: (o) => {
        if (!o.ok) return o.error instanceof ResetError ? {} : undefined;
        if (!RETRY_STATUSES.has(o.value.status)) return undefined;
        // A Retry-After of 0 or one that cannot be read: the usual backoff.
        const after = retryAfterOf(o.value.headers);
        return { retryAfterMs: after !== undefined && after > 0 ? after : undefined };
      },
      onRetry: ({ attempt, delayMs, outcome: o }) =>
        this.onRetry?.(
          `${req.method} ${req.path}: ${o.ok ? `HTTP ${o.value.status}` : (o.error as Error).message}; retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.policy.attempts})`,
        ),
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  private async sendOnce(req: KubeRequest): Promise<KubeResponse> {
    const base = this.config.requestServer.replace(/\/+$/, '');
    const url = new URL(base + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined && value !== false) url.searchParams.set(key, String(value));
    }
    const payload = req.body === undefined ? undefined : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const options: https.RequestOptions = {
      method: req.method,
      headers: {
        accept: 'application/json',
        'user-agent': USER_AGENT,
        ...(payload === undefined ? {} : { 'content-type': req.contentType ?? 'application/json' }),
      },
    };
    try {
      await this.config.kubeConfig.applyToHTTPSOptions(options);
      // A token an exec plugin or auth provider just produced: masked before anything can print it.
      const auth = (options.headers as Record<string, unknown> | undefined)?.Authorization ?? (options.headers as Record<string, unknown> | undefined)?.authorization;
      if (typeof auth === 'string') {
        const credential = auth.replace(/^(Bearer|Basic)\s+/i, '');
        this.config.setSecret(credential);
        if (/^Basic\s/i.test(auth)) this.config.setSecret(Buffer.from(credential, 'base64').toString('utf8'));
      }
    } catch (err) {
      throw new UserError(
        `could not use the credentials of user "${this.config.user}" in ${this.config.inputName} (context "${this.config.context}"): ${(err as Error).message}`,
      );
    }
    let res;
    try {
      // The kubeconfig's TLS options (CA, client certificate, server name, a proxy agent) go through as they are.
      res = await request({ method: req.method, url, body: payload, timeoutMs: this.timeoutMs, tls: options });
    } catch (err) {
      throw err instanceof NetworkError ? this.networkError(err, req) : err;
    }
    const text = res.body.toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text, headers: res.headers };
  }

  /** Sends a request and returns the body of a 2xx answer; any other answer becomes a UserError. */
  async call(req: KubeRequest, purpose: RequestPurpose): Promise<any> {
    const res = await this.send(req);
    if (res.status >= 200 && res.status < 300) return res.body;
    throw this.apiError(res, purpose);
  }

  private networkError(err: NetworkError, req: KubeRequest): UserError {
    const code = err.code ?? '';
    switch (err.kind) {
      case 'no-answer':
        // Not retried: a server that takes this long is not helped by more load, and
        // the run would wait attempts x timeout. A repeat by the user is safe (see send()).
        return new UserError(
          `${this.where} accepted the connection but did not answer ${req.method} ${req.path} within ${formatTimeout(this.timeoutMs)}` +
            (req.method === 'GET'
              ? ': the API server (or a proxy in front of it) is overloaded or stuck; run again later'
              : ': the change may or may not have been made; run again (the same apply or delete is safe to repeat)'),
        );
      case 'reset':
        return new ResetError(`the connection to ${this.where} was reset: ${err.message} (${code})`);
      case 'tls-untrusted':
      case 'tls-hostname':
      case 'tls-expired': {
        const why = explain(err.kind, {
          trusted: `the CA in ${this.config.inputName} (certificate-authority-data of cluster "${this.config.cluster}")`,
        });
        return new UserError(
          `TLS check failed for ${this.where}: ${why} (${code}). The kubeconfig is probably for another cluster, or its CA is outdated: download it again and update the secret`,
        );
      }
      case 'tls-protocol':
        return new UserError(`TLS handshake with ${this.where} failed (${code}): is the address an https endpoint of a Kubernetes API server?`);
      case 'refused':
      case 'dns':
      case 'dns-temporary':
      case 'unreachable':
      case 'connect-timeout':
        // Not retried: a wrong address or a private endpoint does not get better by waiting.
        return new UserError(
          `cannot reach ${this.where}: ${err.message}. Check the server address in ${this.config.inputName} and that this runner can reach it ` +
            "(a private endpoint needs a self-hosted runner or a public endpoint; check the API server's IP allow-list)",
        );
      default:
        return new UserError(`request to ${this.where} failed: ${err.message}${code ? ` (${code})` : ''}`);
    }
  }

  /** The UserError for a non-2xx answer. */
  apiError(res: KubeResponse, purpose: RequestPurpose): UserError {
    const status: KubeStatus = res.body && res.body.kind === 'Status' ? res.body : {};
    const serverMessage = status.message ?? res.text.trim().slice(0, 500);
    const target = describeTarget(purpose);
    switch (res.status) {
      case 401:
        return new UserError(
          `${this.where} rejected the credentials of user "${this.config.user}" (401 Unauthorized): the token or client certificate ` +
            `in ${this.config.inputName} is wrong, expired or for another cluster. Download the kubeconfig again and update the secret`,
        );
      case 403: {
        // The server's message names the user, verb and resource it checked
        // (a server-side apply is checked as patch, then create).
        const user = /User "([^"]+)"/.exec(serverMessage)?.[1];
        const denied = /cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(serverMessage);
        const verb = denied?.[1] ?? purpose.verb;
        const resource = denied ? (denied[3] ? `${denied[2]}.${denied[3]}` : denied[2]) : purpose.resource;
        const who = user ? `user "${user}"` : `user "${this.config.user}"`;
        const anonymous = user === 'system:anonymous' ? ' The request was anonymous: the kubeconfig has no credentials the server accepts.' : '';
        return new UserError(
          `RBAC denied ${who} to ${verb} ${resource}${purpose.namespace ? ` in namespace "${purpose.namespace}"` : ''} (403 Forbidden).` +
            `${anonymous} Grant the verb with a Role and RoleBinding (or ClusterRole) for that user, or use a kubeconfig that has it`,
          serverMessage,
        );
      }
      case 409: {
        const conflicts = (status.details?.causes ?? []).filter((c) => (c.reason ?? c.type) === 'FieldManagerConflict');
        if (conflicts.length) {
          const lines = conflicts.map((c) => {
            const manager = /conflict with "([^"]+)"/.exec(c.message ?? '')?.[1];
            return `${c.field ?? '?'} is owned by ${manager ? `field manager "${manager}"` : (c.message ?? 'another field manager')}`;
          });
          return new UserError(
            `${target}: ${conflicts.length} field(s) are owned by another field manager (409 Conflict). Someone changed them with another ` +
              'tool (kubectl apply/edit, a controller, the console) since this action applied them. Set `force-conflicts: true` to take them over ' +
              'with the values from this workflow, or remove them from the other tool',
            lines.join('\n'),
          );
        }
        return new UserError(`${target}: conflict (409): ${serverMessage}. The object changed while it was being updated: run again`);
      }
      case 422: {
        const causes = (status.details?.causes ?? [])
          .map((c) => `${c.field ?? ''}${c.field ? ': ' : ''}${c.message ?? c.reason ?? ''}`)
          .filter((line) => line && !serverMessage.includes(line));
        return new UserError(`the API server rejected ${target} (422 Invalid): ${serverMessage}`, causes.join('\n') || undefined);
      }
      case 404:
        return new UserError(`${target}: not found (404): ${serverMessage}`);
      default:
        return new UserError(
          `${this.where} answered ${res.status}${status.reason ? ` ${status.reason}` : ''} to ${target}: ${serverMessage || '(no message)'}`,
        );
    }
  }
}

interface KubeStatus {
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; causes?: { type?: string; reason?: string; message?: string; field?: string }[] };
}

function describeTarget(p: RequestPurpose): string {
  const object = p.name ? `${p.resource} ${p.namespace ? `${p.namespace}/` : ''}${p.name}` : `${p.resource}${p.namespace ? ` in namespace "${p.namespace}"` : ''}`;
  return `${p.verb} ${object}`;
}
