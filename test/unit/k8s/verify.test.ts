import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { checkAnswer, formatVerifyReport, verify, type VerifyCase } from '../../../src/k8s/verify.js';

let server: http.Server | undefined;

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

const cases: VerifyCase[] = [
  { name: 'adds the header', request: { path: '/get', headers: { host: 'app.example.com' } }, expect: { status: 200, headers: { 'x-hello': 'world' } } },
  { name: 'blocks admin', request: { method: 'POST', path: '/admin', body: 'x' }, expect: { status: 403, bodyContains: ['denied'], upstream: false, logs: ['x'] } },
];

describe('verify', () => {
  it('passes when every case passes', async () => {
    const seen: string[] = [];
    const url = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.host}`);
      if (req.url === '/admin') {
        res.writeHead(403).end('access denied');
      } else {
        res.writeHead(200, { 'x-hello': 'world' }).end('ok');
      }
    });
    const report = await verify({ url, cases, timeoutMs: 5000, intervalMs: 50 });
    expect(report).toMatchObject({ passed: true, attempts: 1 });
    expect(report.cases).toEqual([
      { name: 'adds the header', passed: true, status: 200, problems: [] },
      { name: 'blocks admin', passed: true, status: 403, problems: [], skipped: ['upstream', 'logs'] },
    ]);
    expect(seen).toContain('GET /get app.example.com');
  });

  it('retries until the new plugin answers', async () => {
    let requests = 0;
    const url = await serve((req, res) => {
      requests++;
      if (requests <= 4) return void res.writeHead(200).end('old plugin');
      if (req.url === '/admin') return void res.writeHead(403).end('denied');
      res.writeHead(200, { 'x-hello': 'world' }).end();
    });
    const attempts: number[] = [];
    const report = await verify({ url, cases, timeoutMs: 10_000, intervalMs: 20, onAttempt: (n) => attempts.push(n) });
    expect(report.passed).toBe(true);
    expect(report.attempts).toBe(3);
    expect(attempts).toEqual([1, 2]);
  });

  it('fails after the timeout with the problems of the last round', async () => {
    const url = await serve((_req, res) => void res.writeHead(500).end('boom'));
    const report = await verify({ url, cases, timeoutMs: 300, intervalMs: 50 });
    expect(report.passed).toBe(false);
    expect(report.attempts).toBeGreaterThan(1);
    expect(report.cases[0].problems).toEqual(['status: expected 200, got 500', 'response header x-hello: expected "world", got (absent)']);
    expect(report.cases[1].problems).toEqual(['status: expected 403, got 500', 'body: expected to contain "denied", got "boom"']);
    const table = formatVerifyReport(report);
    expect(table).toContain('| adds the header | FAIL | 500 | status: expected 200, got 500; response header x-hello: expected "world", got (absent) |');
    expect(table).toContain('not checked remotely: upstream, logs |');
  });

  it('reports a gateway that does not answer', async () => {
    const url = await serve(() => {});
    server!.close();
    server!.closeAllConnections();
    server = undefined;
    const report = await verify({ url, cases: [cases[0]], timeoutMs: 100, intervalMs: 50 });
    expect(report.passed).toBe(false);
    expect(report.cases[0].problems[0]).toMatch(/^no answer: .*ECONNREFUSED/);
  });
});

describe('checkAnswer', () => {
  it('checks absent headers', () => {
    const c: VerifyCase = { name: 'x', request: { path: '/' }, expect: { headers: { server: null } } };
    expect(checkAnswer(c, { status: 200, headers: { server: 'envoy' }, body: '' })).toEqual(['response header server: expected (absent), got "envoy"']);
    expect(checkAnswer(c, { status: 200, headers: {}, body: '' })).toEqual([]);
  });

  it('checks an exact body', () => {
    const c: VerifyCase = { name: 'x', request: { path: '/' }, expect: { body: 'denied\n' } };
    expect(checkAnswer(c, { status: 403, headers: {}, body: 'denied\n' })).toEqual([]);
    expect(checkAnswer(c, { status: 403, headers: {}, body: 'nope' })).toEqual(['body: expected "denied\\n", got "nope"']);
  });
});
