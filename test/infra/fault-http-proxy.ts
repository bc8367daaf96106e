// An HTTP proxy on 127.0.0.1 that injects faults into chosen requests, in
// front of a real server (the test registry, the test API server). The
// client always speaks plain HTTP to it; it speaks HTTP or HTTPS to the
// target. Each rule matches a method and a path pattern and applies to the
// first `times` requests it matches; its fault is one of:
//   - status: answer this status itself (headers such as Retry-After, a body,
//     e.g. a registry error JSON or a Kubernetes Status), the target never
//     sees the request;
//   - hang:   never answer (the client's timeout has to end it);
//   - reset:  reset the connection, at once or, with `afterBytes`, once that
//     many bytes of the request body went on to the target (an upload cut in
//     the middle: the target saw part of it).
// Every other request is passed through unchanged, Host header included, so
// the upload locations a registry hands out point back at the proxy. Every
// request is recorded with the fault it got. Loopback only; close() stops it
// and drops every connection, hung ones too.
//
// test/infra/faulty-proxy.ts works one level down (TCP connections, not
// requests) and stays the tool for "the first N connections"; this one is
// for faults that must hit one exact request (a manifest PUT, an apply PATCH).
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';

export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string | object }
  | { hang: true }
  | { reset: true; afterBytes?: number };

export interface FaultRule {
  /** HTTP method, exact (default: any). */
  method?: string;
  /** Matched against the path with its query string. */
  path: RegExp;
  /**
   * Apply to the first N matching requests, then pass them through (default:
   * every one). A `reset` with `afterBytes` only matches a request whose
   * Content-Length is larger than that.
   */
  times?: number;
  fault: Fault;
}

export interface SeenRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** What was done: 'pass', 'status 503', 'hang', 'reset', 'reset after 1000 bytes'. */
  fault: string;
  /** The status the client got (from the fault, or from the target); undefined for a hang or reset. */
  status?: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

export interface FaultHttpProxyOptions {
  /** http://host:port or https://host:port; must be a loopback address. */
  target: string;
  /** PEM CA of an https target; without it the target's certificate is not checked (loopback test servers). */
  ca?: string;
  rules?: FaultRule[];
}

export interface FaultHttpProxy {
  /** "127.0.0.1:port" */
  host: string;
  port: number;
  /** http://127.0.0.1:port */
  url: string;
  /** Every request so far, in order of arrival. */
  requests(): SeenRequest[];
  /** The requests that match a method and path (all methods when `method` is undefined). */
  seen(method: string | undefined, path: RegExp): SeenRequest[];
  /** Replaces the rules (and their counters). */
  setRules(rules: FaultRule[]): void;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

export async function startFaultHttpProxy(options: FaultHttpProxyOptions): Promise<FaultHttpProxy> {
  const target = new URL(options.target);
  if (!LOOPBACK.test(target.hostname)) throw new Error(`the fault proxy only fronts loopback servers, not ${target.host}`);
  const secure = target.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, ca: options.ca, rejectUnauthorized: options.ca !== undefined })
    : new http.Agent({ keepAlive: true });
  let rules: Array<FaultRule & { used: number }> = [];
  const setRules = (next: FaultRule[]): void => {
    rules = next.map((r) => ({ ...r, used: 0 }));
  };
  setRules(options.rules ?? []);
  const log: SeenRequest[] = [];
  const sockets = new Set<Socket>();

  const pick = (method: string, path: string, length: number | undefined): Fault | undefined => {
    for (const rule of rules) {
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      if (!rule.path.test(path)) continue;
      // A cut after K bytes is meant for a body that has them: a shorter one does not match.
      if ('reset' in rule.fault && rule.fault.afterBytes !== undefined && (length ?? Infinity) <= rule.fault.afterBytes) continue;
      if (rule.times !== undefined && rule.used >= rule.times) continue;
      rule.used++;
      return rule.fault;
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry: SeenRequest = { method, path, fault: 'pass', at: Date.now() };
    log.push(entry);
    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const fault = pick(method, path, length);

    if (fault && 'status' in fault) {
      entry.fault = `status ${fault.status}`;
      entry.status = fault.status;
      const body = fault.body === undefined ? '' : typeof fault.body === 'string' ? fault.body : JSON.stringify(fault.body);
      const type = typeof fault.body === 'object' ? 'application/json' : 'text/plain';
      // Read the request to its end first, as a server would, so the client is not cut off mid-send.
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...fault.headers });
        res.end(body);
      });
      return;
    }
    if (fault && 'hang' in fault) {
      entry.fault = 'hang';
      req.resume(); // take the body, never answer
      return;
    }
    if (fault && 'reset' in fault && fault.afterBytes === undefined) {
      entry.fault = 'reset';
      req.socket.resetAndDestroy();
      return;
    }

    const cutAfter = fault && 'reset' in fault ? fault.afterBytes : undefined;
    if (cutAfter !== undefined) entry.fault = `reset after ${cutAfter} bytes`;
    const upstream = (secure ? https : http).request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method,
        path,
        // The client spoke plain HTTP: a registry builds its upload locations from these.
        headers: { ...req.headers, 'x-forwarded-proto': 'http' },
        agent,
      },
      (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.rawHeaders);
        upRes.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    if (cutAfter === undefined) {
      req.pipe(upstream);
      return;
    }
    // Forward the first `cutAfter` bytes of the body, then drop both sides.
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      const room = cutAfter - sent;
      if (chunk.length < room) {
        sent += chunk.length;
        upstream.write(chunk);
        return;
      }
      if (room > 0) upstream.write(chunk.subarray(0, room));
      sent = cutAfter;
      req.pause();
      // Give the target a moment to take in what was sent, then cut.
      setTimeout(() => {
        upstream.destroy();
        req.socket.resetAndDestroy();
      }, 20);
    });
    req.on('end', () => {
      // A chunked body that ended before the cut: it still never gets an answer.
      if (sent < cutAfter) {
        upstream.destroy();
        req.socket.resetAndDestroy();
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}`,
    requests: () => [...log],
    seen: (method, path) => log.filter((r) => (method === undefined || r.method === method) && path.test(r.path)),
    setRules,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
