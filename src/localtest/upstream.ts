// The upstream behind the local Envoy: a small httpbin-like server on
// 127.0.0.1 that records every request it sees, so a case can check whether
// the plugin let a request through and with which headers.
//   /status/{code}   answers with that status (418 with the teapot body)
//   /headers         {"headers": {...}} as received
//   /anything[/...]  method, path, headers and body as received
//   /delay/{seconds} answers after that many seconds (at most 10)
//
// startFake serves the named upstreams a test file declares (`upstreams:`):
// canned answers for the services the plugin itself calls.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { FakeAnswer, UpstreamSpec } from './cases.js';

export const TEAPOT_BODY = `
    -=[ teapot ]=-

       _...._
     .'  _ _ \`.
    | ."\` ^ \`". _,
    \\_;\`"---"\`|//
      |       ;/
      \\_     _/
        \`"""\`
`;

export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface Upstream {
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://upstream');
      const request: SeenRequest = { method: req.method ?? 'GET', path: url.pathname + url.search, headers: flatHeaders(req.headers), body: Buffer.concat(chunks).toString('utf8') };
      seen.push(request);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(value, null, 2)}\n`);
      };
      const status = /^\/status\/(\d{3})$/.exec(url.pathname);
      const delay = /^\/delay\/(\d+)$/.exec(url.pathname);
      if (delay) {
        setTimeout(() => json(200, { delayed: Number(delay[1]) }), Math.min(Number(delay[1]), 10) * 1000);
      } else if (status) {
        const code = Number(status[1]);
        if (code === 418) {
          res.writeHead(418, { 'x-more-info': 'http://tools.ietf.org/html/rfc2324' });
          res.end(TEAPOT_BODY);
        } else {
          res.writeHead(code, { 'content-type': 'text/html; charset=utf-8' });
          res.end();
        }
      } else if (url.pathname === '/headers') {
        json(200, { headers: request.headers });
      } else if (url.pathname === '/anything' || url.pathname.startsWith('/anything/') || url.pathname === '/get') {
        json(200, { method: request.method, url: request.path, headers: request.headers, data: request.body });
      } else {
        json(404, { error: 'not found', path: url.pathname });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        seen,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A fake of a service the plugin calls: canned answers, every call recorded. */
export interface FakeUpstream {
  name: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

function answerFor(spec: Extract<UpstreamSpec, { kind: 'fake' }>, path: string): FakeAnswer {
  const bare = path.split('?')[0];
  return spec.paths[bare] ?? spec.answer;
}

/** One gRPC message frame: uncompressed flag, big-endian length, bytes. */
function grpcFrame(body: string): Buffer {
  const bytes = Buffer.from(body, 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/**
 * Starts the fake for one declared upstream on 127.0.0.1. An HTTP fake
 * speaks HTTP/1.1 and answers each path with its canned status, headers and
 * body; a gRPC fake speaks HTTP/2 without TLS and answers every call with one
 * message (the body) and the grpc-status trailer.
 */
export function startFake(spec: Extract<UpstreamSpec, { kind: 'fake' }>): Promise<FakeUpstream> {
  const seen: SeenRequest[] = [];
  const record = (method: string | undefined, url: string | undefined, headers: http.IncomingHttpHeaders, body: Buffer): SeenRequest => {
    const request: SeenRequest = { method: method ?? 'GET', path: url ?? '/', headers: flatHeaders(headers), body: body.toString('utf8') };
    seen.push(request);
    return request;
  };
  let server: http.Server | http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  if (spec.grpc) {
    const h2 = http2.createServer();
    h2.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    h2.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const plain: http.IncomingHttpHeaders = {};
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) plain[k] = v as string | string[];
        const request = record(headers[':method'] as string, headers[':path'] as string, plain, Buffer.concat(chunks));
        const a = answerFor(spec, request.path);
        stream.respond({ ':status': a.status, 'content-type': 'application/grpc', ...a.headers }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(a.grpcStatus ?? 0) }));
        stream.end(a.status === 200 ? grpcFrame(a.body) : undefined);
      });
    });
    server = h2;
  } else {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = record(req.method, req.url, req.headers, Buffer.concat(chunks));
        const a = answerFor(spec, request.path);
        res.writeHead(a.status, a.headers);
        res.end(a.body);
      });
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        name: spec.name,
        port,
        seen,
        close: () =>
          new Promise<void>((done) => {
            if (server instanceof http.Server) server.closeAllConnections();
            for (const s of sessions) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
