// Starts a real registry (Debian's docker-registry, distribution 2.8) on a
// loopback port for integration tests, in one of three modes:
//   - 'http':       plain HTTP, no auth;
//   - 'tls-basic':  TLS with a CA made here + htpasswd (bcrypt) Basic auth;
//   - 'token':      plain HTTP + token auth; the token service is a small
//                   RS256 JWT signer served here, its certificate is the
//                   registry's rootcertbundle and travels in the JWT's x5c.
// It throws when docker-registry, skopeo, openssl or htpasswd is missing:
// these tests are never skipped (test/infra/install-registry.sh installs them).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';

export type RegistryMode = 'http' | 'tls-basic' | 'token';

export interface TestRegistry {
  mode: RegistryMode;
  /** "127.0.0.1:port" */
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** PEM CA file (tls-basic). */
  caFile?: string;
  /** A directory holding ca.crt, for skopeo --cert-dir (tls-basic). */
  certDir?: string;
  /** How many token requests the token service answered (token mode). */
  tokenRequests(): number;
  /** Storage root of the registry. */
  storageDir: string;
  /** Stops the registry process (the token service stays up). */
  stop(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
  /** Stops everything and removes the temp directory. */
  close(): Promise<void>;
}

function which(program: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Throws (never skips) when a tool the integration tests need is missing. */
export function requireTools(): void {
  const missing = ['docker-registry', 'skopeo', 'openssl', 'htpasswd'].filter((p) => !which(p));
  if (missing.length > 0) {
    throw new Error(
      `integration tests need ${missing.join(', ')} on PATH, which ${missing.length === 1 ? 'is' : 'are'} missing: run test/infra/install-registry.sh (as root) first`,
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate for 127.0.0.1/localhost signed by it. */
function makeTlsFiles(dir: string): { caFile: string; certFile: string; keyFile: string } {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=asm-wasm test CA'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext'],
    dir,
  );
  return { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface TokenService {
  server: Server;
  realm: string;
  requests(): number;
}

/**
 * A token service in the shape distribution expects: GET /token?service&scope
 * with Basic credentials; answers {token, access_token, expires_in}. Grants
 * the requested actions to the known user, nothing to anyone else.
 */
async function startTokenService(dir: string, users: Record<string, string>, issuer: string, service: string): Promise<TokenService & { certFile: string }> {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'signer.key', '-out', 'signer.crt', '-days', '2', '-subj', '/CN=asm-wasm test token signer'], dir);
  const key = createPrivateKey(readFileSync(join(dir, 'signer.key')));
  const cert = new X509Certificate(readFileSync(join(dir, 'signer.crt')));
  const x5c = cert.raw.toString('base64');
  let count = 0;
  const server = createServer((req, res) => {
    count++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const authz = req.headers.authorization ?? '';
    let subject = '';
    if (authz.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
      if (users[u] === undefined || users[u] !== rest.join(':')) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ details: 'invalid username or password' }));
        return;
      }
      subject = u;
    }
    const access: Array<{ type: string; name: string; actions: string[] }> = [];
    for (const scope of url.searchParams.getAll('scope')) {
      const [type, name, actions] = scope.split(':');
      if (type === 'repository' && subject) access.push({ type, name, actions: actions.split(',') });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [x5c] };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: url.searchParams.get('service') ?? service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), key);
    const token = `${input}.${b64url(signature)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { server, realm: `http://127.0.0.1:${port}/token`, requests: () => count, certFile: join(dir, 'signer.crt') };
}

async function waitForRegistry(port: number, tls: boolean, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode} at start:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const options = { host: '127.0.0.1', port, path: '/v2/', method: 'GET', rejectUnauthorized: false };
      const onResponse = (res: http.IncomingMessage): void => {
        res.resume();
        resolve(true);
      };
      const req = tls ? https.request(options, onResponse) : http.request(options, onResponse);
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on 127.0.0.1:${port} within 15 s:\n${log()}`);
}

export interface RegistryOptions {
  /**
   * The htpasswd realm (tls-basic), sent in `WWW-Authenticate: Basic realm="…"`.
   * Istio's Wasm image fetcher refuses any challenge whose realm is not an
   * http(s) URL to a public host, so the Istio tests give a URL here.
   */
  realm?: string;
}

export async function startRegistry(mode: RegistryMode, options: RegistryOptions = {}): Promise<TestRegistry> {
  requireTools();
  const dir = mkdtempSync(join(tmpdir(), `asm-wasm-registry-${mode}-`));
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  const port = await freePort();
  const username = mode === 'http' ? undefined : 'pusher';
  const password = mode === 'http' ? undefined : `pw-${randomBytes(6).toString('hex')}`;

  let tlsFiles: ReturnType<typeof makeTlsFiles> | undefined;
  let certDir: string | undefined;
  let token: (TokenService & { certFile: string }) | undefined;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (mode === 'tls-basic') {
    tlsFiles = makeTlsFiles(dir);
    certDir = join(dir, 'certs');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), readFileSync(tlsFiles.caFile));
    lines.push('  tls:', `    certificate: ${tlsFiles.certFile}`, `    key: ${tlsFiles.keyFile}`);
    const htpasswd = join(dir, 'htpasswd');
    // -B bcrypt, -i password from stdin, -n print instead of writing a file
    const entry = execFileSync('htpasswd', ['-niB', username!], { input: password, encoding: 'utf8' });
    writeFileSync(htpasswd, entry);
    lines.push('auth:', '  htpasswd:', `    realm: ${JSON.stringify(options.realm ?? 'asm-wasm-test')}`, `    path: ${htpasswd}`);
  }
  if (mode === 'token') {
    token = await startTokenService(dir, { [username!]: password! }, 'asm-wasm-test-issuer', 'asm-wasm-test-registry');
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${token.realm}`,
      '    service: asm-wasm-test-registry',
      '    issuer: asm-wasm-test-issuer',
      `    rootcertbundle: ${token.certFile}`,
    );
  }
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, `${lines.join('\n')}\n`);

  let proc: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    output = '';
    const p = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    p.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    await waitForRegistry(port, mode === 'tls-basic', p, () => output);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      p.kill('SIGTERM');
    });
  };
  await start();
  return {
    mode,
    host: `127.0.0.1:${port}`,
    port,
    username,
    password,
    caFile: tlsFiles?.caFile,
    certDir,
    storageDir,
    tokenRequests: () => token?.requests() ?? 0,
    stop,
    start,
    async close() {
      await stop();
      if (token) await new Promise<void>((r) => token!.server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
