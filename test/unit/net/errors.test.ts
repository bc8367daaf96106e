// Error classification from real failures on 127.0.0.1: a closed port, a
// server that drops the connection or never answers, and TLS servers with a
// self-signed, a wrongly named and an expired certificate (made with openssl),
// plus plain HTTP where TLS was expected. The kind comes from Node's error
// code, never from its message text.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkError, classify, explain, isCertificateKind, kindOfCode, request, tlsAgent, type NetworkErrorKind } from '../../../src/net/index.js';

let dir: string;
const servers: Array<net.Server> = [];
const sockets = new Set<net.Socket>();

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A certificate for `san`, signed by the test CA, valid for `days` (negative: expired). */
function serverCert(name: string, san: string, days: number): { key: Buffer; cert: Buffer } {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', String(days), '-extfile', `${name}.ext`);
  return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) };
}

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function tlsServer(tlsOptions: https.ServerOptions): Promise<number> {
  return listen(https.createServer(tlsOptions, (_req, res) => res.end('ok')));
}

/** The NetworkError a request to `url` fails with. */
async function failure(url: string, options: { ca?: Buffer; timeoutMs?: number } = {}): Promise<NetworkError> {
  const agent = url.startsWith('https:') ? tlsAgent({ ca: options.ca }) : undefined;
  try {
    await request({ method: 'GET', url: new URL(url), agent, timeoutMs: options.timeoutMs ?? 5000 });
  } catch (err) {
    expect(err).toBeInstanceOf(NetworkError);
    return err as NetworkError;
  } finally {
    agent?.destroy();
  }
  throw new Error(`expected ${url} to fail`);
}

let ca: Buffer;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'asm-wasm-net-'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=asm-wasm net test CA');
  ca = readFileSync(join(dir, 'ca.crt'));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  rmSync(dir, { recursive: true, force: true });
});

describe('connection failures', () => {
  it('a closed port is refused', async () => {
    const probe = net.createServer();
    const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as net.AddressInfo).port)));
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await failure(`http://127.0.0.1:${port}/`);
    expect(err).toMatchObject({ kind: 'refused', code: 'ECONNREFUSED' });
    expect(err.describe()).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('a connection dropped before the answer is a reset', async () => {
    const port = await listen(net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy())));
    expect(await failure(`http://127.0.0.1:${port}/`)).toMatchObject({ kind: 'reset' });
  });

  it('a connection closed without an answer is a reset too (socket hang up)', async () => {
    const port = await listen(net.createServer((socket) => socket.once('data', () => socket.end())));
    expect(await failure(`http://127.0.0.1:${port}/`)).toMatchObject({ kind: 'reset', code: 'ECONNRESET' });
  });

  it('a server that accepts and never answers is "no-answer", after the timeout', async () => {
    const port = await listen(net.createServer(() => undefined));
    const started = Date.now();
    const err = await failure(`http://127.0.0.1:${port}/`, { timeoutMs: 300 });
    expect(err).toMatchObject({ kind: 'no-answer', code: 'ETIMEDOUT', message: 'no answer within 300 ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe('TLS failures', () => {
  it('a self-signed certificate is untrusted; with its CA given, the same server answers', async () => {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'self.key', '-out', 'self.crt', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
    const self = { key: readFileSync(join(dir, 'self.key')), cert: readFileSync(join(dir, 'self.crt')) };
    const port = await tlsServer(self);
    const err = await failure(`https://127.0.0.1:${port}/`);
    expect(err).toMatchObject({ kind: 'tls-untrusted', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const agent = tlsAgent({ ca: self.cert });
    const res = await request({ method: 'GET', url: new URL(`https://127.0.0.1:${port}/`), agent });
    agent.destroy();
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('ok');
  });

  it('a certificate from an unknown CA is untrusted', async () => {
    const port = await tlsServer(serverCert('unknown-ca', 'IP:127.0.0.1', 2));
    expect(await failure(`https://127.0.0.1:${port}/`)).toMatchObject({ kind: 'tls-untrusted', code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('a certificate for another name does not match the host', async () => {
    const port = await tlsServer(serverCert('other-name', 'DNS:registry.other.example', 2));
    expect(await failure(`https://127.0.0.1:${port}/`, { ca })).toMatchObject({ kind: 'tls-hostname', code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('an expired certificate is expired', async () => {
    const port = await tlsServer(serverCert('expired', 'IP:127.0.0.1', -1));
    const err = await failure(`https://127.0.0.1:${port}/`, { ca });
    expect(err.kind).toBe('tls-expired');
    expect(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']).toContain(err.code);
  });

  it('TLS spoken to a plain HTTP server is a protocol failure', async () => {
    const port = await listen(http.createServer((_req, res) => res.end('plain')));
    expect(await failure(`https://127.0.0.1:${port}/`)).toMatchObject({ kind: 'tls-protocol' });
  });
});

describe('the table', () => {
  it.each<[string | undefined, NetworkErrorKind]>([
    ['ECONNREFUSED', 'refused'],
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns-temporary'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ENETUNREACH', 'unreachable'],
    ['ETIMEDOUT', 'connect-timeout'],
    ['ECONNRESET', 'reset'],
    ['EPIPE', 'reset'],
    ['ECONNABORTED', 'reset'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls-untrusted'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls-untrusted'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'tls-untrusted'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls-hostname'],
    ['CERT_HAS_EXPIRED', 'tls-expired'],
    ['CERT_NOT_YET_VALID', 'tls-expired'],
    ['EPROTO', 'tls-protocol'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls-protocol'],
    ['EACCES', 'other'],
    [undefined, 'other'],
  ])('%s is %s', (code, kind) => {
    expect(kindOfCode(code)).toBe(kind);
    expect(classify(Object.assign(new Error('x'), { code })).kind).toBe(kind);
  });

  it('explains each kind in one clause, and names the trusted CA when told it', () => {
    expect(explain('tls-hostname')).toBe('its certificate is not valid for this address');
    expect(explain('tls-untrusted')).toBe('its certificate is not signed by a CA this runner trusts');
    expect(explain('tls-untrusted', { trusted: 'the CA in kubeconfig' })).toBe('its certificate is not signed by the CA in kubeconfig');
    expect(isCertificateKind('tls-expired')).toBe(true);
    expect(isCertificateKind('tls-protocol')).toBe(false);
  });

  it('keeps a NetworkError as it is, and never reads the message to decide', () => {
    const e = new NetworkError('reset', 'read ECONNRESET', { code: 'ECONNRESET' });
    expect(classify(e)).toBe(e);
    expect(classify(new Error('socket hang up ECONNREFUSED self-signed')).kind).toBe('other');
  });
});
