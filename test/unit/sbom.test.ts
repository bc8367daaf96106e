// The SBOM builder on the reference plugin (golden) and on each lockfile
// format the toolchain reads: every package the lockfile installs is listed
// with its purl, the compiler and the SDK are marked, the module's sha256 is
// the subject, and the same input always gives the same bytes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACTION_VERSION, ROLE_PROPERTY, buildSbom, npmPurl, pluginSbom, sbomBytes, type CycloneDxBom } from '../../src/sbom/index.js';
import { sriHashes, uuidV5 } from '../../src/sbom/cyclonedx.js';
import { lockPackages } from '../../src/toolchain/lockfile.js';
import { expectGolden } from '../helpers/golden.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROJECTS = path.join(ROOT, 'test', 'fixtures', 'projects');
const SHA = 'a3'.repeat(32);
const FROM = { created: '2026-05-01T12:00:00Z', source: 'https://github.com/org/plugin-repo', revision: '0123456789abcdef0123456789abcdef01234567' };

function plugin(files: Record<string, string>, pkg: object): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-sbom-'));
  fs.writeFileSync(path.join(d, 'package.json'), JSON.stringify(pkg));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  return d;
}

const withRole = (bom: CycloneDxBom, role: string) => bom.components.filter((c) => c.properties?.some((p) => p.name === ROLE_PROPERTY && p.value === role)).map((c) => c.purl);
const purls = (bom: CycloneDxBom) => bom.components.map((c) => c.purl);

describe('the reference plugin', () => {
  it('renders the golden SBOM', () => {
    const sbom = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA, wasmSize: 12345, ...FROM });
    expectGolden('sbom-reference.cdx.json', sbom.bytes.toString('utf8'));
  });

  it('names the compiler, every package of the lockfile and the module sha256', () => {
    const { document: bom, compilerVersion, sdks } = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA });
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'plugin', 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    const locked = Object.entries(lock.packages)
      .filter(([k]) => k !== '')
      .map(([k, v]) => `pkg:npm/${k.replace(/^.*node_modules\//, '').replace('@', '%40')}@${v.version}`);
    expect(purls(bom).sort()).toEqual(locked.sort());
    expect(compilerVersion).toBe(lock.packages['node_modules/assemblyscript'].version);
    expect(withRole(bom, 'compiler')).toEqual([`pkg:npm/assemblyscript@${compilerVersion}`]);
    // The reference plugin carries its own ABI layer: the document says so instead of listing an SDK.
    expect(sdks).toEqual([]);
    expect(bom.metadata.component.properties).toContainEqual({ name: 'asm-wasm:sdk', value: expect.stringContaining('own proxy-wasm ABI layer') });
    expect(bom.metadata.component.hashes).toEqual([{ alg: 'SHA-256', content: SHA }]);
    expect(bom.dependencies).toEqual([{ ref: `wasm:sha256:${SHA}`, dependsOn: [`pkg:npm/assemblyscript@${compilerVersion}`] }]);
    expect(bom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1 });
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is the same bytes for the same input, and another module gets another serial number', () => {
    const a = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA, ...FROM });
    const b = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA, ...FROM });
    const c = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: 'b4'.repeat(32), ...FROM });
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(c.document.serialNumber).not.toBe(a.document.serialNumber);
    // Never the clock: without a commit time there is no timestamp.
    expect(pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA }).document.metadata.timestamp).toBeUndefined();
  });

  it('names the compiler that built the module when an input chose another than the lockfile', () => {
    const { document: bom } = pluginSbom({ pluginDir: path.join(ROOT, 'plugin'), wasmSha256: SHA, compilerVersion: '0.28.1' });
    expect(withRole(bom, 'compiler')).toEqual(['pkg:npm/assemblyscript@0.28.1']);
    expect(purls(bom)).toContain('pkg:npm/assemblyscript@0.28.20');
    expect(bom.dependencies[0].dependsOn).toContain('pkg:npm/assemblyscript@0.28.1');
  });

  it('states the version of this action as its tool', () => {
    expect(ACTION_VERSION).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});

describe('every lockfile format', () => {
  it('npm 3 with an SDK (proxy-runtime on 0.14)', () => {
    const { document: bom, sdks } = pluginSbom({ pluginDir: path.join(PROJECTS, 'as014-solo'), wasmSha256: SHA });
    expect(sdks).toEqual(['@solo-io/proxy-runtime']);
    expect(withRole(bom, 'sdk')).toEqual(['pkg:npm/%40solo-io/proxy-runtime@0.1.8']);
    expect(withRole(bom, 'compiler')).toEqual(['pkg:npm/assemblyscript@0.14.13']);
    const sdk = bom.components.find((c) => c.name === 'proxy-runtime')!;
    expect(sdk.group).toBe('@solo-io');
    // The lockfile's integrity, as hex.
    expect(sdk.hashes?.[0]?.alg).toBe('SHA-512');
    expect(bom.dependencies[0].dependsOn).toEqual(['pkg:npm/%40solo-io/proxy-runtime@0.1.8', 'pkg:npm/assemblyscript@0.14.13']);
  });

  it('yarn 1', () => {
    const { document: bom } = pluginSbom({ pluginDir: path.join(PROJECTS, 'as019-yarn'), wasmSha256: SHA });
    expect(withRole(bom, 'compiler')).toEqual(['pkg:npm/assemblyscript@0.19.23']);
    expect(withRole(bom, 'sdk')).toEqual(['pkg:npm/%40gcoredev/proxy-wasm-sdk-as@1.2.3']);
    // Every block of the lockfile, each name@version once.
    const text = fs.readFileSync(path.join(PROJECTS, 'as019-yarn', 'yarn.lock'), 'utf8');
    const versions = [...text.matchAll(/^\s+version "([^"]+)"/gm)].length;
    expect(bom.components.length).toBeGreaterThan(3);
    expect(bom.components.length).toBeLessThanOrEqual(versions);
    expect(purls(bom)).toContain('pkg:npm/binaryen@102.0.0-nightly.20211028');
    expect(bom.components.find((c) => c.name === 'binaryen')?.externalReferences?.[0].url).toMatch(/^https:\/\/registry\.yarnpkg\.com\/binaryen\//);
  });

  it('pnpm 9', () => {
    const { document: bom } = pluginSbom({ pluginDir: path.join(PROJECTS, 'as024-pnpm'), wasmSha256: SHA });
    expect(withRole(bom, 'compiler')).toEqual(['pkg:npm/assemblyscript@0.24.1']);
    expect(purls(bom)).toEqual(
      expect.arrayContaining(['pkg:npm/%40assemblyscript/wasi-shim@0.1.0', 'pkg:npm/%40gcoredev/proxy-wasm-sdk-as@1.2.3', 'pkg:npm/binaryen@110.0.0-nightly.20221105', 'pkg:npm/long@5.3.2']),
    );
  });

  it('pnpm 6 and 5.4 keys, with peer suffixes', () => {
    const v6 = [
      "lockfileVersion: '6.0'",
      'devDependencies:',
      '  assemblyscript:',
      '    specifier: 0.24.0',
      '    version: 0.24.0',
      'packages:',
      '  /assemblyscript@0.24.0:',
      '    resolution: {integrity: sha512-AAAA}',
      '    dev: true',
      '  /@scope/sdk@1.0.0(assemblyscript@0.24.0):',
      '    resolution: {integrity: sha512-AAAA}',
      '    dev: false',
    ].join('\n');
    expect(lockPackages(plugin({ 'pnpm-lock.yaml': v6 }, { devDependencies: { assemblyscript: '0.24.0' } }))).toEqual([
      { name: '@scope/sdk', version: '1.0.0', integrity: 'sha512-AAAA', dev: false, resolved: undefined },
      { name: 'assemblyscript', version: '0.24.0', integrity: 'sha512-AAAA', dev: true, resolved: undefined },
    ]);
    const v54 = 'lockfileVersion: 5.4\ndevDependencies:\n  assemblyscript: 0.21.0\npackages:\n  /assemblyscript/0.21.0:\n    resolution: {integrity: sha512-AAAA}\n  /@s/x/2.0.0:\n    dev: true\n';
    expect(lockPackages(plugin({ 'pnpm-lock.yaml': v54 }, { devDependencies: { assemblyscript: '0.21.0' } })).map((p) => `${p.name}@${p.version}`)).toEqual(['@s/x@2.0.0', 'assemblyscript@0.21.0']);
  });

  it('npm 1 (nested dependencies) and npm 2 aliases', () => {
    const v1 = JSON.stringify({
      lockfileVersion: 1,
      dependencies: { assemblyscript: { version: '0.14.13', dev: true, dependencies: { long: { version: '4.0.0', dev: true } } }, long: { version: '5.2.0' } },
    });
    expect(lockPackages(plugin({ 'package-lock.json': v1 }, { devDependencies: { assemblyscript: '0.14.13' } })).map((p) => `${p.name}@${p.version}${p.dev ? ' dev' : ''}`)).toEqual([
      'assemblyscript@0.14.13 dev',
      'long@4.0.0 dev',
      'long@5.2.0',
    ]);
    const v2 = JSON.stringify({
      lockfileVersion: 2,
      packages: { '': {}, 'node_modules/assemblyscript': { version: '0.28.20' }, 'node_modules/as': { name: 'assemblyscript', version: '0.27.0' }, 'node_modules/sdk': { link: true } },
    });
    expect(lockPackages(plugin({ 'package-lock.json': v2 }, { devDependencies: { assemblyscript: '0.28.20' } })).map((p) => `${p.name}@${p.version}`)).toEqual([
      'assemblyscript@0.27.0',
      'assemblyscript@0.28.20',
    ]);
  });
});

describe('building blocks', () => {
  it.each([
    ['long', '5.3.2', 'pkg:npm/long@5.3.2'],
    ['@gcoredev/proxy-wasm-sdk-as', '1.2.3', 'pkg:npm/%40gcoredev/proxy-wasm-sdk-as@1.2.3'],
    ['binaryen', '131.0.0-nightly.20260721', 'pkg:npm/binaryen@131.0.0-nightly.20260721'],
    ['x', '1.0.0+build.1', 'pkg:npm/x@1.0.0%2Bbuild.1'],
  ])('purl of %s@%s', (name, version, purl) => {
    expect(npmPurl(name, version)).toBe(purl);
  });

  it('turns SRI integrity into hex hashes', () => {
    const hex = 'ab'.repeat(64);
    expect(sriHashes(`sha512-${Buffer.from(hex, 'hex').toString('base64')}`)).toEqual([{ alg: 'SHA-512', content: hex }]);
    expect(sriHashes('md5-xyz')).toEqual([]);
    expect(sriHashes(undefined)).toEqual([]);
  });

  it('makes RFC 4122 name-based UUIDs', () => {
    // The RFC's example namespace (DNS) and name give this well-known value.
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('refuses a module digest that is not sha256 hex', () => {
    expect(() => buildSbom({ module: { name: 'p', sha256: 'nope' }, compilerVersion: '0.28.20', sdks: [], direct: {}, packages: [], lockfile: { file: 'package-lock.json', manager: 'npm', version: '3' } })).toThrow(/64 hex/);
  });

  it('ends with a newline and parses back to the same document', () => {
    const bom = buildSbom({ module: { name: 'p', sha256: SHA }, compilerVersion: '0.28.20', sdks: [], direct: { assemblyscript: '0.28.20' }, packages: [], lockfile: { file: 'package-lock.json', manager: 'npm', version: '3' } });
    const bytes = sbomBytes(bom).toString('utf8');
    expect(bytes.endsWith('}\n')).toBe(true);
    expect(JSON.parse(bytes)).toEqual(bom);
    // The compiler is listed even when the lockfile list is empty.
    expect(withRole(bom, 'compiler')).toEqual(['pkg:npm/assemblyscript@0.28.20']);
  });
});
