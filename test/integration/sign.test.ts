// Signing in the push stage and verify-before-apply in the deploy stage,
// against the real cosign (built by test/infra/cosign/build.sh; scripts/test.sh
// exports its path as COSIGN), a real registry with TLS and Basic auth, and a
// real API server. The tests fail, never skip, without cosign.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT, TEMPLATE_DIR, copyPlugin, ensureTemplateBuilt, runCli, tempDir } from '../helpers/cli.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { RegistryClient } from '../../src/oci/registry/index.js';

const WASM = path.join(ROOT, 'plugin', 'build', 'plugin.wasm');
const PASSWORD = 'cosign-test-password-4711';

let registry: TestRegistry;
let kube: Kube;
let work: string;
let plugin: string;
let cosignBin: string;
/** A key pair made by the real `cosign generate-key-pair`. */
let cosignKey: { key: string; pub: string };
/** A PKCS#8 P-256 key pair made here (a second signer, and the "wrong key"). */
let otherKey: { key: string; pub: string };

const env = (): Record<string, string | undefined> => ({ RUNNER_TOOL_CACHE: inject('toolCache'), COSIGN_PASSWORD: undefined });


interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real cosign (asynchronously: the API server's helpers run in this process). */
async function cosign(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cosignBin, args, {
      encoding: 'utf8',
      timeout: 120_000,
      cwd: work,
      env: { ...process.env, HOME: work, TUF_ROOT: path.join(work, 'tuf'), ...extraEnv },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** cosign's flags for the test registry: its CA and the login. */
const registryFlags = (): string[] => ['--registry-cacert', registry.caFile!, '--registry-username', registry.username!, '--registry-password', registry.password!];

async function cosignVerify(pub: string, ref: string): Promise<Run> {
  return cosign(['verify', '--key', pub, '--insecure-ignore-tlog', ...registryFlags(), ref]);
}

/** Push flags for the TLS registry. */
const login = (): string[] => ['--registry-ca', registry.caFile!, '--registry-username', registry.username!, '--registry-password', registry.password!];

async function pushImage(repo: string, format: string, extra: string[] = [], extraEnv: Record<string, string | undefined> = {}) {
  const summary = path.join(tempDir('summary'), 'summary.md');
  fs.writeFileSync(summary, '');
  const run = await runCli(
    ['push', '--plugin-dir', plugin, '--wasm-path', WASM, '--image', `${registry.host}/${repo}`, '--image-format', format, ...login(), ...extra, '--json'],
    { ...env(), GITHUB_STEP_SUMMARY: summary, ...extraEnv },
  );
  return { ...run, summary: fs.readFileSync(summary, 'utf8') };
}

async function deploy(name: string, url: string, verifyKey: string) {
  return runCli(
    ['deploy', '--plugin-dir', plugin, '--name', name, '--url', url, '--verify-key', verifyKey, ...login(), '--kubeconfig', kube.kubeconfig('deployer'), '--json'],
    env(),
  );
}

async function wasmPluginStatus(name: string): Promise<number> {
  return (await kube.request('admin', 'GET', `/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/${name}`)).status;
}

beforeAll(async () => {
  requireTools();
  cosignBin = process.env.COSIGN ?? '';
  if (!cosignBin || !fs.existsSync(cosignBin)) {
    throw new Error(`COSIGN is not set to the cosign binary (${cosignBin || 'unset'}): run the tests with \`npm test\`, which builds it (test/infra/cosign/build.sh)`);
  }
  ensureTemplateBuilt();
  work = tempDir('sign');
  plugin = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
  [registry, kube] = await Promise.all([startRegistry('tls-basic'), startKube()]);
  const made = await cosign(['generate-key-pair'], { COSIGN_PASSWORD: PASSWORD });
  expect(made.code, made.stderr).toBe(0);
  cosignKey = { key: path.join(work, 'cosign.key'), pub: path.join(work, 'cosign.pub') };
  expect(fs.readFileSync(cosignKey.key, 'utf8')).toContain('BEGIN ENCRYPTED SIGSTORE PRIVATE KEY');
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  otherKey = { key: path.join(work, 'other.key'), pub: path.join(work, 'other.pub') };
  fs.writeFileSync(otherKey.key, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  fs.writeFileSync(otherKey.pub, pair.publicKey.export({ format: 'pem', type: 'spki' }));
}, kubeStartTimeout());

afterAll(async () => {
  await Promise.all([registry?.close(), kube?.stop()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('signing in the push stage', () => {
  it('signs with a key from the real cosign generate-key-pair, and the real cosign verifies it', async () => {
    const run = await pushImage('mesh/signed', 'compat', ['--sign', 'true', '--sign-key', cosignKey.key, '--sign-key-password', PASSWORD]);
    expect(run.json!.error).toBeUndefined();
    const { digest, 'signature-tag': tag, 'signature-digest': sigDigest } = run.json!.outputs;
    expect(tag).toBe(`${digest.replace(':', '-')}.sig`);
    expect(sigDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.summary).toContain('Signed (cosign, key)');
    const ref = `${registry.host}/mesh/signed@${digest}`;
    const verified = await cosignVerify(cosignKey.pub, ref);
    expect(verified.code, verified.stderr).toBe(0);
    const claims = JSON.parse(verified.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string }; identity: { 'docker-reference': string } } }>;
    expect(claims[0].critical.image['docker-manifest-digest']).toBe(digest);
    expect(claims[0].critical.identity['docker-reference']).toBe(`${registry.host}/mesh/signed`);
    // Neither the password nor the key's text reaches the log.
    const keyBody = fs.readFileSync(cosignKey.key, 'utf8').split('\n')[1];
    for (const text of [run.stdout, run.stderr, run.summary]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(keyBody);
    }
  });

  it('keeps one signature per key: the same key again (password from COSIGN_PASSWORD) adds nothing, a second key (PKCS#8 PEM text) adds one', async () => {
    const first = await pushImage('mesh/signed', 'compat', ['--sign', 'true', '--sign-key', cosignKey.key], { COSIGN_PASSWORD: PASSWORD });
    expect(first.json!.error).toBeUndefined();
    const again = await pushImage('mesh/signed', 'compat', ['--sign', 'true', '--sign-key', cosignKey.key], { COSIGN_PASSWORD: PASSWORD });
    expect(again.json!.outputs['signature-digest']).toBe(first.json!.outputs['signature-digest']);
    expect(again.json!.results.push.digest).toBe(first.json!.results.push.digest);

    const second = await pushImage('mesh/signed', 'compat', ['--sign', 'true', `--sign-key=${fs.readFileSync(otherKey.key, 'utf8')}`]);
    expect(second.json!.error).toBeUndefined();
    expect(second.json!.outputs['signature-digest']).not.toBe(first.json!.outputs['signature-digest']);
    const ref = `${registry.host}/mesh/signed@${second.json!.outputs.digest}`;
    for (const pub of [cosignKey.pub, otherKey.pub]) {
      const v = await cosignVerify(pub, ref);
      expect(v.code, v.stderr).toBe(0);
    }
  });

  it('gives the real cosign nothing to accept for a wrong key or a different image', async () => {
    const signed = await pushImage('mesh/only-cosign-key', 'docker', ['--sign', 'true', '--sign-key', cosignKey.key, '--sign-key-password', PASSWORD]);
    expect(signed.json!.error).toBeUndefined();
    const wrongKey = await cosignVerify(otherKey.pub, `${registry.host}/mesh/only-cosign-key@${signed.json!.outputs.digest}`);
    expect(wrongKey.code).not.toBe(0);
    const unsigned = await pushImage('mesh/only-cosign-key', 'wasm-artifact');
    expect(unsigned.json!.error).toBeUndefined();
    const otherImage = await cosignVerify(cosignKey.pub, `${registry.host}/mesh/only-cosign-key@${unsigned.json!.outputs.digest}`);
    expect(otherImage.code).not.toBe(0);
  });

  it('stops before pushing on a wrong password, and on keyless without an OIDC token', async () => {
    const wrong = await pushImage('mesh/never-pushed', 'compat', ['--sign', 'true', '--sign-key', cosignKey.key, '--sign-key-password', 'not-it']);
    expect(wrong.json!.ok).toBe(false);
    expect(wrong.json!.error).toBe('input `sign-key`: could not decrypt the private key: the password (sign-key-password) is wrong, or the key file is damaged');
    expect(wrong.json!.outputs.digest).toBeUndefined();
    const keyless = await pushImage('mesh/never-pushed', 'compat', ['--sign', 'keyless'], { ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined });
    expect(keyless.json!.error).toMatch(/^input `sign: keyless` needs GitHub's OIDC token.*id-token: write.*nothing was pushed/);
    expect(keyless.json!.error).not.toContain('\n');
    const client = new RegistryClient({ registry: registry.host, repository: 'mesh/never-pushed', caFile: registry.caFile, credentials: { username: registry.username!, password: registry.password!, origin: 'test' } });
    await client.ping();
    expect(await client.resolve('latest')).toBeUndefined();
    client.close();
  });
});

describe('verify before apply in the deploy stage', () => {
  /** An image signed by the real cosign sign (classic format, offline), and its url. */
  let cosignSigned: { digest: string; url: string };
  /** An image no one signed. */
  let unsigned: { digest: string; url: string };

  beforeAll(async () => {
    const pushed = await pushImage('mesh/deploy', 'compat');
    expect(pushed.json!.error).toBeUndefined();
    const digest = pushed.json!.outputs.digest;
    cosignSigned = { digest, url: `oci://${registry.host}/mesh/deploy@${digest}` };
    const signed = await cosign(
      ['sign', '--key', cosignKey.key, '--use-signing-config=false', '--tlog-upload=false', '--new-bundle-format=false', '-y', ...registryFlags(), `${registry.host}/mesh/deploy@${digest}`],
      { COSIGN_PASSWORD: PASSWORD },
    );
    expect(signed.code, signed.stderr).toBe(0);
    const other = await pushImage('mesh/deploy', 'docker');
    expect(other.json!.error).toBeUndefined();
    unsigned = { digest: other.json!.outputs.digest, url: `oci://${registry.host}/mesh/deploy@${other.json!.outputs.digest}` };
  });

  it('applies an image the real cosign signed, after verifying it with cosign.pub', async () => {
    const run = await deploy('signed-by-cosign', cosignSigned.url, cosignKey.pub);
    expect(run.json!.error).toBeUndefined();
    expect(run.json!.outputs.result).toBe('created');
    expect(run.stdout + run.stderr).toContain(`verified ${registry.host}/mesh/deploy@${cosignSigned.digest}: signed by the verification key`);
    const live = await kube.request('admin', 'GET', '/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/signed-by-cosign');
    expect(live.body.spec.url).toBe(cosignSigned.url);
  });

  it('applies nothing when the key is wrong', async () => {
    const run = await deploy('wrong-key', cosignSigned.url, otherKey.pub);
    expect(run.json!.ok).toBe(false);
    expect(run.json!.error).toMatch(/^signature verification failed for .*: wrong key: none of the 1 signature\(s\) at .* verifies with the verification key \(verify-key\); nothing was sent to the cluster$/);
    expect(await wasmPluginStatus('wrong-key')).toBe(404);
  });

  it('applies nothing for an image without a signature', async () => {
    const run = await deploy('no-signature', unsigned.url, cosignKey.pub);
    expect(run.json!.error).toMatch(/: no signature \(nothing at .*\.sig\); sign it in the push stage/);
    expect(await wasmPluginStatus('no-signature')).toBe(404);
  });

  it('applies nothing when a signature of another image is copied onto this one (digest mismatch)', async () => {
    const client = new RegistryClient({ registry: registry.host, repository: 'mesh/deploy', caFile: registry.caFile, credentials: { username: registry.username!, password: registry.password!, origin: 'test' } });
    await client.ping();
    const from = `${cosignSigned.digest.replace(':', '-')}.sig`;
    const sigDigest = (await client.resolve(from))!;
    const manifest = await client.getManifest(sigDigest);
    const to = `${unsigned.digest.replace(':', '-')}.sig`;
    await client.putManifest(to, manifest, 'application/vnd.oci.image.manifest.v1+json');
    try {
      const run = await deploy('copied-signature', unsigned.url, cosignKey.pub);
      expect(run.json!.error).toMatch(new RegExp(`: digest mismatch: the signature at .* verifies with the key but signs ${cosignSigned.digest}, another image; nothing was sent to the cluster$`));
      expect(await wasmPluginStatus('copied-signature')).toBe(404);
      // The real cosign refuses it as well.
      const v = await cosignVerify(cosignKey.pub, `${registry.host}/mesh/deploy@${unsigned.digest}`);
      expect(v.code).not.toBe(0);
    } finally {
      client.close();
    }
  });

  it('names cosign 3\'s default bundle format when that is all the image has', async () => {
    const pushed = await pushImage('mesh/bundle', 'compat', ['--sbom', 'false']);
    expect(pushed.json!.error).toBeUndefined();
    const digest = pushed.json!.outputs.digest;
    const signed = await cosign(['sign', '--key', cosignKey.key, '--use-signing-config=false', '--tlog-upload=false', '-y', ...registryFlags(), `${registry.host}/mesh/bundle@${digest}`], {
      COSIGN_PASSWORD: PASSWORD,
    });
    expect(signed.code, signed.stderr).toBe(0);
    const run = await deploy('bundle-only', `oci://${registry.host}/mesh/bundle@${digest}`, cosignKey.pub);
    expect(run.json!.error).toMatch(/no signature .*a Sigstore bundle is attached instead, a format this action does not read yet/);
    expect(await wasmPluginStatus('bundle-only')).toBe(404);
  });
});
