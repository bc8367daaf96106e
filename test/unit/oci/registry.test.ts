import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isLoopbackHost,
  isVersionTag,
  parseRegistry,
  parseWwwAuthenticate,
  registryErrorText,
  resolveCredentials,
  validateRepository,
  validateTag,
} from '../../../src/oci/registry/index.js';
import { UserError } from '../../../src/errors.js';

describe('parseWwwAuthenticate', () => {
  it('reads a distribution Bearer challenge', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } },
    ]);
  });

  it('reads Basic, unquoted values, escapes, spaces and several challenges', () => {
    expect(parseWwwAuthenticate('Basic realm="my \\"realm\\""')).toEqual([{ scheme: 'basic', params: { realm: 'my "realm"' } }]);
    expect(parseWwwAuthenticate('Bearer realm=https://x/t, service=reg , error="insufficient_scope"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://x/t', service: 'reg', error: 'insufficient_scope' } },
    ]);
    const two = parseWwwAuthenticate('Basic realm="r1", Bearer realm="https://t", scope="repository:x:pull"');
    expect(two.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(two[1].params).toEqual({ realm: 'https://t', scope: 'repository:x:pull' });
  });

  it('copes with junk', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Negotiate')).toEqual([{ scheme: 'negotiate', params: {} }]);
  });
});

describe('names', () => {
  it('recognises version tags', () => {
    for (const t of ['v1.2.3', '1.2.3', '1.2', 'v0.1', '1.2.3-rc.1', 'v10.20.30-beta']) expect(isVersionTag(t), t).toBe(true);
    for (const t of ['latest', 'main', 'v1', '1', 'sha-abc123', 'feature-1.2', '1.2.x']) expect(isVersionTag(t), t).toBe(false);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', 'localhost', 'localhost:5000', '[::1]:5000', '::1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.1:5000', 'registry.example.com', '128.0.0.1', 'localhost.example.com', '[::2]:5000']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('parses registries', () => {
    expect(parseRegistry('ghcr.io')).toEqual({ host: 'ghcr.io', apiHost: 'ghcr.io', scheme: undefined });
    expect(parseRegistry('http://127.0.0.1:5000/')).toEqual({ host: '127.0.0.1:5000', apiHost: '127.0.0.1:5000', scheme: 'http' });
    expect(parseRegistry('docker.io').apiHost).toBe('registry-1.docker.io');
    expect(() => parseRegistry('ghcr.io/team/repo')).toThrow(UserError);
  });

  it('validates repositories and tags', () => {
    expect(() => validateRepository('team/header-plugin')).not.toThrow();
    expect(() => validateRepository('Team/Plugin')).toThrow(UserError);
    expect(() => validateRepository('a//b')).toThrow(UserError);
    expect(() => validateTag('v1.2.3')).not.toThrow();
    expect(() => validateTag('-bad')).toThrow(UserError);
    expect(() => validateTag('a'.repeat(129))).toThrow(UserError);
  });

  it('summarises registry errors', () => {
    expect(registryErrorText(Buffer.from('{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"x":1}}]}'))).toBe(
      'MANIFEST_INVALID: manifest invalid ({"x":1})',
    );
    expect(registryErrorText(Buffer.from('plain text'))).toBe('plain text');
    expect(registryErrorText(Buffer.alloc(0))).toBe('');
  });
});

describe('resolveCredentials', () => {
  let dir: string;
  const savedPath = process.env.PATH;
  const savedDockerConfig = process.env.DOCKER_CONFIG;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'creds-'));
    process.env.DOCKER_CONFIG = join(dir, 'nowhere');
  });
  afterEach(() => {
    process.env.PATH = savedPath;
    if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDockerConfig;
    rmSync(dir, { recursive: true, force: true });
  });

  it('prefers explicit options and needs both parts', async () => {
    await expect(resolveCredentials({ registry: 'r.example', username: 'u', password: 'p' })).resolves.toMatchObject({ username: 'u', password: 'p' });
    await expect(resolveCredentials({ registry: 'r.example', username: 'u' })).rejects.toThrow(/only registry-username was given/);
  });

  it('is anonymous without a Docker config, but an explicit missing one is an error', async () => {
    await expect(resolveCredentials({ registry: 'r.example' })).resolves.toBeUndefined();
    await expect(resolveCredentials({ registry: 'r.example', dockerConfigPath: join(dir, 'missing.json') })).rejects.toThrow(/could not read the Docker config/);
  });

  it('reads auths (base64 user:password), matching keys with scheme and path', async () => {
    const path = join(dir, 'config.json');
    writeFileSync(
      path,
      JSON.stringify({ auths: { 'https://r.example:5000/v1/': { auth: Buffer.from('alice:s3:cr3t').toString('base64') }, 'other.example': { auth: 'eDp5' } } }),
    );
    const creds = await resolveCredentials({ registry: 'r.example:5000', dockerConfigPath: path });
    expect(creds).toMatchObject({ username: 'alice', password: 's3:cr3t' });
    expect(creds?.origin).toContain(path);
    await expect(resolveCredentials({ registry: 'third.example', dockerConfigPath: path })).resolves.toBeUndefined();
  });

  it('asks a credential helper, with the host on stdin', async () => {
    const bin = join(dir, 'bin');
    const log = join(dir, 'helper-stdin');
    mkdirSync(bin);
    const helper = join(bin, 'docker-credential-fake');
    writeFileSync(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 2\ncat > ${log}\necho '{"ServerURL":"r.example","Username":"bob","Secret":"helper-secret"}'\n`,
    );
    chmodSync(helper, 0o755);
    process.env.PATH = `${bin}:${savedPath}`;
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ credHelpers: { 'r.example': 'fake' }, auths: { 'r.example': { auth: Buffer.from('x:y').toString('base64') } } }));
    const creds = await resolveCredentials({ registry: 'r.example', dockerConfigPath: path });
    expect(creds).toMatchObject({ username: 'bob', password: 'helper-secret', origin: 'credential helper docker-credential-fake' });
    expect(readFileSync(log, 'utf8')).toBe('r.example');
  });
});
