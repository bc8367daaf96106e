// One HTTP exchange on node:http/node:https: a timeout that tells "could not
// connect" from "connected, no answer", a cap on the answer's size, optional
// redirects and streaming to a file, and every failure as a NetworkError.
// TLS: the system CAs plus an extra CA, or no verification when the user
// asked for it (tlsAgent); a kubeconfig's TLS options pass through as is.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { NetworkError, classify } from './errors.js';

export const USER_AGENT = 'asm-wasm-action';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** No progress for this long ends the request (default 60 s). */
  timeoutMs?: number;
  agent?: http.Agent;
  /** More node:https options: ca, cert, key, servername, an agent for a proxy (what a kubeconfig gives). */
  tls?: https.RequestOptions;
  /** Answers larger than this fail (default 1 GiB). */
  maxBodyBytes?: number;
  /** Follow up to this many redirects (GET and HEAD only; default none). */
  redirects?: number;
  /** Stream a 2xx answer's body to this file instead of memory (the returned body is then empty). */
  toFile?: string;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Where the answer came from (after redirects). */
  url: URL;
}

const MAX_BODY = 1024 * 1024 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** "30s", "1.5s", "250 ms". */
export function formatTimeout(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms} ms`;
}

/** The first value of a header. */
export function headerOf(res: { headers?: http.IncomingHttpHeaders }, name: string): string | undefined {
  const v = res.headers?.[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export interface TlsOptions {
  /** PEM text of a CA to trust on top of the system ones. */
  ca?: string | Buffer;
  /** Skip certificate verification (asked for by the user, never a default). */
  insecure?: boolean;
}

/** A keep-alive HTTPS agent that trusts the system CAs plus `ca`. */
export function tlsAgent(options: TlsOptions & { maxSockets?: number } = {}): https.Agent {
  return new https.Agent({
    keepAlive: true,
    maxSockets: options.maxSockets ?? 4,
    ca: options.ca ? [...tls.rootCertificates, options.ca.toString()] : undefined,
    rejectUnauthorized: !options.insecure,
  });
}

/** Sends one request and reads the answer. Rejects only with a NetworkError (no answer); any status resolves. */
export async function request(req: HttpRequest): Promise<HttpResponse> {
  let current = req;
  for (let hop = 0; ; hop++) {
    const res = await exchange(current);
    const location = headerOf(res, 'location');
    const follow = (req.redirects ?? 0) > hop && REDIRECTS.has(res.status) && location && (current.method === 'GET' || current.method === 'HEAD');
    if (!follow) return res;
    const next = new URL(location, current.url);
    const headers = { ...current.headers };
    // Credentials stay with the origin they were meant for.
    if (next.origin !== current.url.origin) for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
    current = { ...current, url: next, headers };
  }
}

function exchange(req: HttpRequest): Promise<HttpResponse> {
  const timeoutMs = req.timeoutMs ?? 60_000;
  const maxBody = req.maxBodyBytes ?? MAX_BODY;
  const plain = req.url.protocol === 'http:';
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...(req.tls?.headers as Record<string, string> | undefined), ...req.headers };
  if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));
  else if (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH') headers['Content-Length'] = '0';
  const options: https.RequestOptions = { ...req.tls, method: req.method, headers };
  if (req.agent) options.agent = req.agent;
  const send = plain ? http.request : https.request;

  return new Promise<HttpResponse>((resolve, reject) => {
    const fail = (err: unknown): void => reject(classify(err));
    const request = send(req.url, options, (res) => {
      const done = (body: Buffer): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, url: req.url });
      res.on('aborted', () => fail(new NetworkError('reset', 'response aborted', { code: 'ECONNRESET' })));
      const status = res.statusCode ?? 0;
      if (req.toFile && status >= 200 && status < 300) {
        pipeline(res, fs.createWriteStream(req.toFile)).then(() => done(Buffer.alloc(0)), fail);
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBody) {
          const err = new NetworkError('too-large', `response too large (over ${maxBody} bytes)`, { code: 'ERR_RESPONSE_TOO_LARGE' });
          fail(err);
          request.destroy(err);
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => done(Buffer.concat(chunks)));
      res.on('error', fail);
    });
    request.setTimeout(timeoutMs, () => {
      // Connected but silent: the server was reached and may have acted on the request.
      const connected = !!request.socket && !request.socket.connecting;
      request.destroy(new NetworkError(connected ? 'no-answer' : 'connect-timeout', `no answer within ${formatTimeout(timeoutMs)}`, { code: 'ETIMEDOUT' }));
    });
    request.on('error', fail);
    request.end(req.body);
  });
}
