// The registry client against a tiny in-process fake (node:http on
// loopback): retry timing, Retry-After, token caching, error wording.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RegistryClient } from '../../../src/oci/registry/index.js';
import { UserError } from '../../../src/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let server: Server | undefined;
afterEach(async () => {
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = undefined;
});

async function fake(handler: Handler): Promise<string> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

function client(registry: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) {
  const sleeps: number[] = [];
  const c = new RegistryClient({
    registry,
    repository: 'team/plugin',
    retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 40, maxRetryAfterMs: 5000 },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    log: () => undefined,
    ...extra,
  });
  return { c, sleeps };
}

describe('RegistryClient retries', () => {
  it('waits as Retry-After says on 429, then backs off exponentially on 503', async () => {
    let n = 0;
    const base = await fake((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      n++;
      if (n === 1) return res.writeHead(429, { 'Retry-After': '2' }).end();
      if (n === 2 || n === 3) return res.writeHead(503).end();
      res.writeHead(404).end();
    });
    const { c, sleeps } = client(base);
    await c.ping();
    await expect(c.blobExists(`sha256:${'a'.repeat(64)}`)).resolves.toBe(false);
    expect(sleeps).toEqual([2000, 20, 40]);
    c.close();
  });

  it('gives up after the bounded number of tries with a clear error', async () => {
    let n = 0;
    const base = await fake((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      n++;
      res.writeHead(502, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"backend down"}]}');
    });
    const { c, sleeps } = client(base);
    await c.ping();
    const err = await c.getManifest(`sha256:${'a'.repeat(64)}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/kept failing .* HTTP 502 .*gave up after 4 tries/);
    expect((err as UserError).details).toContain('backend down');
    expect(n).toBe(4);
    expect(sleeps).toHaveLength(3);
    c.close();
  });
});

describe('RegistryClient auth', () => {
  it('fetches a Bearer token once per scope and reuses it', async () => {
    let tokens = 0;
    const base = await fake((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        tokens++;
        expect(url.searchParams.get('scope')).toBe('repository:team/plugin:pull,push');
        expect(url.searchParams.get('service')).toBe('fake');
        expect(req.headers.authorization).toBe(`Basic ${Buffer.from('alice:pw').toString('base64')}`);
        return res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"access_token":"tok","expires_in":300}');
      }
      if (req.headers.authorization !== 'Bearer tok') {
        return res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="fake"` }).end();
      }
      res.writeHead(404).end();
    });
    const { c } = client(base, { credentials: { username: 'alice', password: 'pw', origin: 'test' } });
    await c.ping();
    for (let i = 0; i < 3; i++) await c.blobExists(`sha256:${'b'.repeat(64)}`);
    expect(tokens).toBe(1);
    c.close();
  });

  it('names registry, repository and user on 401, never the password', async () => {
    const base = await fake((req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"', 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    });
    const { c } = client(base, { credentials: { username: 'alice', password: 'hunter2-secret', origin: 'the given username and password' } });
    await c.ping();
    const err = (await c.blobExists(`sha256:${'c'.repeat(64)}`).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(base.replace('http://', ''));
    expect(err.message).toContain('team/plugin');
    expect(err.message).toContain('user "alice"');
    expect(err.message).toMatch(/check the username and password/);
    expect(`${err.message}\n${err.details}`).not.toContain('hunter2-secret');
    c.close();
  });

  it('refuses plain HTTP to a non-loopback host unless insecure', () => {
    expect(() => new RegistryClient({ registry: 'http://registry.example.com', repository: 'a/b' })).toThrow(/refusing plain HTTP/);
    expect(() => new RegistryClient({ registry: 'http://registry.example.com', repository: 'a/b', insecure: true })).not.toThrow();
  });
});

describe('RegistryClient uploads', () => {
  it('uploads in PATCH chunks above the threshold, with Content-Range, then PUT with the digest', async () => {
    const seen: string[] = [];
    const data = Buffer.from('0123456789abcdefghij');
    const base = await fake((req, res, body) => {
      seen.push(`${req.method} ${req.url} ${req.headers['content-range'] ?? ''} ${body.length}`);
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (req.method === 'POST') return res.writeHead(202, { Location: '/v2/team/plugin/blobs/uploads/u1?_state=s0' }).end();
      if (req.method === 'PATCH') return res.writeHead(202, { Location: `/v2/team/plugin/blobs/uploads/u1?_state=s${seen.length}` }).end();
      if (req.method === 'PUT') return res.writeHead(201, { 'Docker-Content-Digest': 'sha256:x' }).end();
      res.writeHead(500).end();
    });
    const { c } = client(base, { chunkThresholdBytes: 8, chunkSizeBytes: 8 });
    await c.ping();
    const err = await c.uploadBlob({ digest: 'sha256:y', data }).catch((e: unknown) => e);
    // the fake reports another digest: the client notices
    expect(String(err)).toMatch(/stored sha256:x/);
    expect(seen.slice(1, 6)).toEqual([
      'POST /v2/team/plugin/blobs/uploads/  0',
      'PATCH /v2/team/plugin/blobs/uploads/u1?_state=s0 0-7 8',
      'PATCH /v2/team/plugin/blobs/uploads/u1?_state=s3 8-15 8',
      'PATCH /v2/team/plugin/blobs/uploads/u1?_state=s4 16-19 4',
      'PUT /v2/team/plugin/blobs/uploads/u1?_state=s5&digest=sha256%3Ay  0',
    ]);
    c.close();
  });
});
