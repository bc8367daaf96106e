// Credentials that reach the process only while it runs: a token an exec
// plugin prints, and user:password@ in the server URL. Each is masked before
// anything can print it, and the URL is shown without it.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { KubeClient } from '../../../src/k8s/client.js';
import { loadKubeconfig, withoutUserinfo } from '../../../src/k8s/kubeconfig.js';

let server: http.Server;
let port: number;
const seen: Array<string | undefined> = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'APIVersions', versions: ['v1'] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function kubeconfig(serverUrl: string, user: Record<string, unknown>): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: serverUrl, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  });
}

describe('credentials learnt at run time', () => {
  it('masks the token an exec plugin prints, before the request is sent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-exec-'));
    const token = `exec-token-${process.pid}-${Date.now()}`;
    const plugin = path.join(dir, 'get-token');
    fs.writeFileSync(
      plugin,
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"${token}"}}'\n`,
      { mode: 0o755 },
    );
    const masked: string[] = [];
    const config = loadKubeconfig(
      kubeconfig(`http://127.0.0.1:${port}`, { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: plugin, interactiveMode: 'Never' } }),
      { setSecret: (v) => masked.push(v) },
    );
    // The token is not in the kubeconfig: nothing could mask it at load time.
    expect(masked).not.toContain(token);
    const res = await new KubeClient(config).send({ method: 'GET', path: '/api' });
    expect(res.status).toBe(200);
    expect(seen.pop()).toBe(`Bearer ${token}`);
    expect(masked).toContain(token);
  });

  it('masks user:password@ in the server URL and shows the URL without it', async () => {
    const masked: string[] = [];
    const config = loadKubeconfig(kubeconfig(`http://admin:s%40cret-pw@127.0.0.1:${port}`, { token: 'tok-0123456789' }), { setSecret: (v) => masked.push(v) });
    expect(masked).toEqual(expect.arrayContaining(['admin', 's%40cret-pw', 's@cret-pw']));
    expect(config.server).toBe(`http://127.0.0.1:${port}`);
    const client = new KubeClient(config);
    expect(client.where).not.toContain('cret');
    // Requests still go to the URL as written.
    expect((await client.send({ method: 'GET', path: '/api' })).status).toBe(200);
  });

  it('never repeats userinfo in the message for a bad server address', () => {
    expect(() => loadKubeconfig(kubeconfig('ftp://admin:pw-123@host', { token: 'tok-0123456789' }), { setSecret: () => {} })).toThrow(
      /server address that is not an http\(s\) URL: ftp:\/\/host$/,
    );
    expect(withoutUserinfo('https://u:p@h:6443/x')).toBe('https://h:6443/x');
  });
});
