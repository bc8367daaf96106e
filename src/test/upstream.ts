// The upstream behind the local Envoy: a small httpbin-like server on
// 127.0.0.1 that records every request it sees, so a case can check whether
// the plugin let a request through and with which headers.
//   /status/{code}   answers with that status (418 with the teapot body)
//   /headers         {"headers": {...}} as received
//   /anything[/...]  method, path, headers and body as received
//   /delay/{seconds} answers after that many seconds (at most 10)
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

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
