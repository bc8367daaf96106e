// The SBOM attached to the pushed image, against a real registry (Debian's
// docker-registry, distribution 2.8: TLS and Basic auth, and no referrers
// API, so the referrers tag schema is what makes the SBOM findable). Read
// back with this project's client and with skopeo, an independent reader;
// the image itself must still pass the gate Istio's fetcher rules make.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gate } from '../../../src/oci/gate.js';
import { MEDIA_TYPES } from '../../../src/oci/image.js';
import { RegistryClient } from '../../../src/oci/registry/index.js';
import { artifactManifest, attachReferrer, listReferrers, referrersTag } from '../../../src/oci/registry/referrers.js';
import { ROLE_PROPERTY, SBOM_MEDIA_TYPE, type CycloneDxBom } from '../../../src/sbom/index.js';
import { ROOT, runCli, tempDir } from '../../helpers/cli.js';
import { requireTools, startRegistry, type TestRegistry } from '../../infra/registry.js';

const PLUGIN_DIR = path.join(ROOT, 'plugin');
const WASM_PATH = path.join(PLUGIN_DIR, 'build', 'plugin.wasm');
const FAST_RETRY = { attempts: 3, baseDelayMs: 50, maxDelayMs: 200, maxRetryAfterMs: 1500 };
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let registry: TestRegistry;
let wasmSha: string;

beforeAll(async () => {
  requireTools();
  if (!existsSync(WASM_PATH)) {
    if (!existsSync(path.join(PLUGIN_DIR, 'node_modules'))) execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PLUGIN_DIR, stdio: 'inherit' });
    execFileSync('npm', ['run', 'asbuild'], { cwd: PLUGIN_DIR, stdio: 'inherit' });
  }
  wasmSha = sha256(readFileSync(WASM_PATH));
  registry = await startRegistry('tls-basic');
}, 300_000);

afterAll(async () => {
  await registry?.close();
});

function client(repository: string): RegistryClient {
  return new RegistryClient({
    registry: registry.host,
    repository,
    credentials: { username: registry.username, password: registry.password, origin: 'the test registry' },
    caFile: registry.caFile,
    retry: FAST_RETRY,
    log: () => {},
  });
}

/** `skopeo inspect --raw` of a reference: the exact bytes the registry serves. */
async function skopeoRaw(ref: string): Promise<Buffer> {
  const { stdout } = await promisify(execFile)(
    'skopeo',
    ['--insecure-policy', 'inspect', '--raw', '--cert-dir', registry.certDir!, '--creds', `${registry.username}:${registry.password}`, `docker://${ref}`],
    { encoding: 'buffer', timeout: 60_000 },
  );
  return stdout;
}

function cliArgs(image: string, extra: string[] = []): string[] {
  return [
    'push',
    '--plugin-dir', PLUGIN_DIR,
    '--wasm-path', WASM_PATH,
    '--image', image,
    '--registry-username', registry.username!,
    '--registry-password', registry.password!,
    '--registry-ca', registry.caFile!,
    '--json',
    ...extra,
  ];
}

describe('the push stage attaches the SBOM', () => {
  const repo = 'team/header-authorization';
  const image = () => `${registry.host}/${repo}`;
  let digest: string;
  let sbomDigest: string;

  it('as a referrer of the image that both readers find, naming the compiler, the lockfile packages and the module sha256', async () => {
    const run = await runCli(cliArgs(image(), ['--tags', 'v1.0.0']));
    expect(run.json!.error, run.stderr).toBeUndefined();
    const out = run.json!.outputs;
    digest = out.digest;
    sbomDigest = out['sbom-digest'];
    expect(sbomDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(sbomDigest).not.toBe(digest);

    // Our client: no referrers API here, so the list is at the fallback tag.
    const c = client(repo);
    try {
      const listed = await listReferrers(c, digest);
      expect(listed.via).toBe('tag');
      expect(listed.manifests).toEqual([{ mediaType: MEDIA_TYPES.ociManifest, digest: sbomDigest, size: expect.any(Number), artifactType: SBOM_MEDIA_TYPE, annotations: { 'org.opencontainers.image.created': expect.any(String) } }]);
      const manifest = JSON.parse((await c.getManifest(sbomDigest)).toString('utf8'));
      expect(manifest).toMatchObject({
        mediaType: MEDIA_TYPES.ociManifest,
        artifactType: SBOM_MEDIA_TYPE,
        config: { mediaType: MEDIA_TYPES.ociEmpty, size: 2 },
        subject: { mediaType: MEDIA_TYPES.ociManifest, digest },
        layers: [{ mediaType: SBOM_MEDIA_TYPE, annotations: { 'org.opencontainers.image.title': 'plugin.cdx.json' } }],
      });
      const blob = await c.getBlob(manifest.layers[0].digest);
      // The file the stage wrote is the document in the registry.
      expect(readFileSync(out['sbom-path']).equals(blob)).toBe(true);
      const bom = JSON.parse(blob.toString('utf8')) as CycloneDxBom;
      expect(bom.metadata.component.hashes).toEqual([{ alg: 'SHA-256', content: wasmSha }]);
      const compiler = bom.components.filter((x) => x.properties?.some((p) => p.name === ROLE_PROPERTY && p.value === 'compiler'));
      expect(compiler.map((x) => x.purl)).toEqual(['pkg:npm/assemblyscript@0.28.20']);
      const lock = JSON.parse(readFileSync(path.join(PLUGIN_DIR, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
      for (const [key, entry] of Object.entries(lock.packages)) {
        if (key === '') continue;
        expect(bom.components.map((x) => x.purl), key).toContain(`pkg:npm/${key.replace(/^.*node_modules\//, '')}@${entry.version}`);
      }

      // The image is untouched: it still passes the gate, and its tag names it, not the list.
      const checked = await gate(c.source(), digest, wasmSha);
      expect(checked.variant).toBeTruthy();
    } finally {
      c.close();
    }

    // skopeo, an independent reader: the referrers list at the tag, the artifact by digest, the image by its tag.
    const index = JSON.parse((await skopeoRaw(`${image()}:${referrersTag(digest)}`)).toString('utf8'));
    expect(index.mediaType).toBe(MEDIA_TYPES.ociIndex);
    expect(index.manifests.map((m: { digest: string; artifactType: string }) => [m.digest, m.artifactType])).toEqual([[sbomDigest, SBOM_MEDIA_TYPE]]);
    const artifact = await skopeoRaw(`${image()}@${sbomDigest}`);
    expect(`sha256:${sha256(artifact)}`).toBe(sbomDigest);
    expect(JSON.parse(artifact.toString('utf8')).subject.digest).toBe(digest);
    expect(`sha256:${sha256(await skopeoRaw(`${image()}:v1.0.0`))}`).toBe(digest);
  });

  it('a second push of the same module attaches the same SBOM once', async () => {
    expect(sbomDigest, 'the previous test pushed').toBeTruthy();
    const run = await runCli(cliArgs(image(), ['--tags', 'v1.0.0']));
    expect(run.json!.error, run.stderr).toBeUndefined();
    expect(run.json!.outputs['sbom-digest']).toBe(sbomDigest);
    const index = JSON.parse((await skopeoRaw(`${image()}:${referrersTag(digest)}`)).toString('utf8'));
    expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([sbomDigest]);
  });

  it('another referrer of the same image is added beside it, and the first stays', async () => {
    expect(sbomDigest, 'the previous test pushed').toBeTruthy();
    const data = Buffer.from('{"note":"another referrer"}\n');
    const note = { mediaType: 'application/json', digest: `sha256:${sha256(data)}`, size: data.length, data };
    const c = client(repo);
    try {
      const subject = await c.getManifest(digest);
      const artifact = artifactManifest({ mediaType: MEDIA_TYPES.ociManifest, digest, size: subject.length }, 'application/vnd.example.note+json', [note]);
      const r = await attachReferrer(c, artifact, digest);
      expect(r).toMatchObject({ via: 'tag', tag: referrersTag(digest), digest: artifact.digest });
    } finally {
      c.close();
    }
    const index = JSON.parse((await skopeoRaw(`${image()}:${referrersTag(digest)}`)).toString('utf8'));
    expect(index.manifests.map((m: { artifactType: string }) => m.artifactType)).toEqual([SBOM_MEDIA_TYPE, 'application/vnd.example.note+json']);
    expect(index.manifests[0].digest).toBe(sbomDigest);
  });

  it('--no-sbom pushes the image alone', async () => {
    const run = await runCli(cliArgs(`${registry.host}/team/no-sbom`, ['--tags', 'v1.0.0', '--no-sbom']));
    expect(run.json!.error, run.stderr).toBeUndefined();
    expect(run.json!.outputs['sbom-digest']).toBeUndefined();
    const c = client('team/no-sbom');
    try {
      expect(await c.resolve(referrersTag(run.json!.outputs.digest))).toBeUndefined();
    } finally {
      c.close();
    }
  });

  it('refuses to overwrite a referrers tag that holds something else, before any tag is set', async () => {
    const r2 = 'team/taken';
    // The image pushed without an SBOM, then its referrers tag taken by the image itself.
    const first = await runCli(cliArgs(`${registry.host}/${r2}`, ['--no-sbom']));
    expect(first.json!.error, first.stderr).toBeUndefined();
    const d = first.json!.outputs.digest;
    const c = client(r2);
    try {
      await c.putManifest(referrersTag(d), await c.getManifest(d), MEDIA_TYPES.ociManifest);
      const run = await runCli(cliArgs(`${registry.host}/${r2}`, ['--tags', 'v2.0.0']));
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`${referrersTag(d)} holds application/vnd\\.oci\\.image\\.manifest\\.v1\\+json instead of the image index of referrers`));
      expect(await c.resolve('v2.0.0')).toBeUndefined();
      expect(await c.resolve(referrersTag(d))).toBe(d);
    } finally {
      c.close();
    }
  });

  it('a Docker schema 2 image gets its SBOM too', async () => {
    const run = await runCli(cliArgs(`${registry.host}/team/docker-format`, ['--image-format', 'docker']));
    expect(run.json!.error, run.stderr).toBeUndefined();
    const out = run.json!.outputs;
    const artifact = JSON.parse((await skopeoRaw(`${registry.host}/team/docker-format@${out['sbom-digest']}`)).toString('utf8'));
    expect(artifact.subject).toMatchObject({ mediaType: MEDIA_TYPES.dockerManifest, digest: out.digest });
    const c = client('team/docker-format');
    try {
      await gate(c.source(), out.digest, wasmSha);
    } finally {
      c.close();
    }
  });
});

describe('without an image', () => {
  it('writes the SBOM beside the OCI layout', async () => {
    const run = await runCli(['push', '--plugin-dir', PLUGIN_DIR, '--wasm-path', WASM_PATH, '--json']);
    expect(run.json!.error, run.stderr).toBeUndefined();
    const out = run.json!.outputs;
    expect(path.dirname(out['sbom-path'])).toBe(path.dirname(out['oci-layout']));
    expect(out['sbom-digest']).toBeUndefined();
    const bom = JSON.parse(readFileSync(out['sbom-path'], 'utf8')) as CycloneDxBom;
    expect(bom.metadata.component.hashes).toEqual([{ alg: 'SHA-256', content: wasmSha }]);
    // A plugin directory without a lockfile names the way out.
    const bare = tempDir('sbom-bare');
    writeFileSync(path.join(bare, 'package.json'), '{"name":"p"}');
    const failed = await runCli(['push', '--plugin-dir', bare, '--wasm-path', WASM_PATH]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/SBOM of plugin\.wasm needs the plugin's package\.json and lockfile: .*no lockfile.*set `sbom: false`/s);
  });
});
