// Keyless signing (src/sign/keyless.ts) end to end, minus the public
// Sigstore services: the runner's OIDC token API, Fulcio and Rekor are the
// local stand-ins of test/infra/sigstore.ts (a test CA made by openssl, a
// test log key); @sigstore/sign is the real library; the registry is the real
// one with TLS and Basic auth; the signature image is checked by the REAL
// cosign (COSIGN, built by test/infra/cosign/build.sh) with a trusted root
// that holds the test CA and the test log key, so cosign checks the
// certificate chain, the identity and issuer, and the Rekor SET. Fails, never
// skips, without cosign.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TEMPLATE_DIR, copyPlugin, ensureTemplateBuilt, runCli, tempDir } from '../helpers/cli.js';
import { requireTools, startRegistry, type TestRegistry } from '../infra/registry.js';
import { kubeStartTimeout, startKube, type Kube } from '../infra/kube.js';
import { REQUEST_TOKEN, TEST_OIDC_ISSUER, startSigstore, type SigstoreStandIns } from '../infra/sigstore.js';
import { sha256Digest } from '../../src/oci/image.js';
import { RegistryClient } from '../../src/oci/registry/index.js';
import { generateKeyPairSync } from 'node:crypto';
import {
  BUNDLE_ANNOTATION,
  CERTIFICATE_ANNOTATION,
  CHAIN_ANNOTATION,
  KeylessSigner,
  SIGNATURE_ANNOTATION,
  SignatureVerificationError,
  parseTrustedRoot,
  signImage,
  verifyImageKeyless,
  type KeylessPolicy,
  type RekorBundle,
} from '../../src/sign/index.js';
import { UserError } from '../../src/errors.js';

let registry: TestRegistry;
let kube: Kube;
let sigstore: SigstoreStandIns;
let work: string;
let cosignBin: string;
let trustedRoot: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cosign(args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cosignBin, args, {
      encoding: 'utf8',
      timeout: 120_000,
      cwd: work,
      env: { ...process.env, HOME: work, TUF_ROOT: path.join(work, 'tuf') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

const registryFlags = (): string[] => ['--registry-cacert', registry.caFile!, '--registry-username', registry.username!, '--registry-password', registry.password!];

/** `cosign verify` of a keyless signature: the test trusted root, no CT log (the test CA adds no SCT), the Rekor SET checked. */
function cosignVerify(ref: string, identity: string, issuer = TEST_OIDC_ISSUER, root = trustedRoot): Promise<Run> {
  return cosign(['verify', '--trusted-root', root, '--certificate-identity', identity, '--certificate-oidc-issuer', issuer, '--insecure-ignore-sct', ...registryFlags(), ref]);
}

async function client(repository: string): Promise<RegistryClient> {
  const c = new RegistryClient({ registry: registry.host, repository, caFile: registry.caFile, credentials: { username: registry.username!, password: registry.password!, origin: 'test' } });
  await c.ping();
  return c;
}

/** Pushes a small OCI image (a config and one layer) and returns its digest. */
async function pushImage(c: RegistryClient, tag: string, content: string): Promise<string> {
  const layer = Buffer.from(content);
  const config = Buffer.from(JSON.stringify({ architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  for (const data of [layer, config]) await c.uploadBlob({ digest: sha256Digest(data), data });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256Digest(layer), size: layer.length }],
    }),
  );
  await c.putManifest(tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
  return sha256Digest(manifest);
}

function signer(masked: string[] = []): KeylessSigner {
  return new KeylessSigner({ oidc: { url: sigstore.tokenUrl, token: REQUEST_TOKEN }, fulcioUrl: sigstore.fulcioUrl, rekorUrl: sigstore.rekorUrl, mask: (s) => masked.push(s) }, {});
}

beforeAll(async () => {
  requireTools();
  cosignBin = process.env.COSIGN ?? '';
  if (!cosignBin || !fs.existsSync(cosignBin)) {
    throw new Error(`COSIGN is not set to the cosign binary (${cosignBin || 'unset'}): run the tests with \`npm test\`, which builds it (test/infra/cosign/build.sh)`);
  }
  work = tempDir('sign-keyless');
  [registry, sigstore, kube] = await Promise.all([startRegistry('tls-basic'), startSigstore(), startKube()]);
  trustedRoot = sigstore.trustedRootFile(path.join(work, 'trusted_root.json'));
}, 120_000 + kubeStartTimeout());

afterAll(async () => {
  await Promise.all([registry?.close(), sigstore?.close(), kube?.stop()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('keyless signing (OIDC token → Fulcio → Rekor) in cosign\'s classic layout', () => {
  let digest: string;
  let ref: string;

  beforeAll(async () => {
    const c = await client('mesh/keyless');
    try {
      digest = await pushImage(c, 'v1', 'plugin one');
      const masked: string[] = [];
      const logs: string[] = [];
      const record = await signImage({ client: c, digest, key: signer(masked), log: (l) => logs.push(l) });
      expect(record.mode).toBe('keyless');
      expect(record.tag).toBe(`${digest.replace(':', '-')}.sig`);
      expect(record.signatures).toBe(1);
      expect(record.keyless).toMatchObject({ identity: sigstore.identity, issuer: TEST_OIDC_ISSUER, logIndex: 0 });
      expect(logs.join('\n')).toContain(`keyless: certificate for ${sigstore.identity}`);
      // The token was asked for once, for Fulcio's audience, with the runner's request token; both were masked.
      expect(sigstore.tokenRequests).toEqual([{ authorization: `Bearer ${REQUEST_TOKEN}`, audience: 'sigstore' }]);
      expect(masked).toContain(REQUEST_TOKEN);
      expect(masked.some((m) => m.split('.').length === 3 && m.length > 100)).toBe(true);
      ref = `${registry.host}/mesh/keyless@${digest}`;
    } finally {
      c.close();
    }
  });

  it('writes the layer cosign writes: signature, leaf certificate, chain and Rekor bundle annotations', async () => {
    const c = await client('mesh/keyless');
    try {
      const manifest = JSON.parse((await c.getManifest((await c.resolve(`${digest.replace(':', '-')}.sig`))!)).toString('utf8')) as {
        layers: Array<{ mediaType: string; annotations: Record<string, string> }>;
      };
      expect(manifest.layers).toHaveLength(1);
      const a = manifest.layers[0].annotations;
      expect(manifest.layers[0].mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
      expect(Object.keys(a).sort()).toEqual([BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, SIGNATURE_ANNOTATION].sort());
      expect(a[CERTIFICATE_ANNOTATION]).toBe(sigstore.issued[0]);
      expect(a[CHAIN_ANNOTATION]).toBe(sigstore.intermediatePem + sigstore.rootPem);
      const bundle = JSON.parse(a[BUNDLE_ANNOTATION]) as RekorBundle;
      expect(Object.keys(bundle)).toEqual(['SignedEntryTimestamp', 'Payload']);
      expect(Object.keys(bundle.Payload)).toEqual(['body', 'integratedTime', 'logIndex', 'logID']);
      expect(bundle.Payload.logIndex).toBe(0);
      expect(bundle.Payload.logID).toMatch(/^[0-9a-f]{64}$/);
      const body = JSON.parse(Buffer.from(bundle.Payload.body, 'base64').toString('utf8')) as { kind: string; spec: { signature: { content: string } } };
      expect(body.kind).toBe('hashedrekord');
      expect(body.spec.signature.content).toBe(a[SIGNATURE_ANNOTATION]);
      expect(sigstore.entries).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it('is accepted by the real cosign verify with the identity and issuer, the test CA and the test Rekor key', async () => {
    const v = await cosignVerify(ref, sigstore.identity);
    expect(v.code, v.stderr).toBe(0);
    const claims = JSON.parse(v.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string }; identity: { 'docker-reference': string } }; optional: Record<string, unknown> }>;
    expect(claims[0].critical.image['docker-manifest-digest']).toBe(digest);
    expect(claims[0].critical.identity['docker-reference']).toBe(`${registry.host}/mesh/keyless`);
    expect(claims[0].optional).toMatchObject({ Subject: sigstore.identity, Issuer: TEST_OIDC_ISSUER });
  });

  it('is refused by the real cosign for a wrong identity, a wrong issuer, or another CA', async () => {
    const wrongIdentity = await cosignVerify(ref, 'https://github.com/someone-else/repo/.github/workflows/release.yml@refs/heads/main');
    expect(wrongIdentity.code).not.toBe(0);
    expect(wrongIdentity.stderr).toContain(`none of the expected identities matched what was in the certificate, got subjects [${sigstore.identity}]`);
    const wrongIssuer = await cosignVerify(ref, sigstore.identity, 'https://accounts.google.com');
    expect(wrongIssuer.code).not.toBe(0);
    expect(wrongIssuer.stderr).toContain(`none of the expected identities matched what was in the certificate, got subjects [${sigstore.identity}] with issuer ${TEST_OIDC_ISSUER}`);
    // A trusted root with another CA (and the same log) does not chain the certificate.
    const other = await startSigstore();
    try {
      const ours = JSON.parse(fs.readFileSync(trustedRoot, 'utf8')) as Record<string, unknown>;
      const theirs = JSON.parse(fs.readFileSync(other.trustedRootFile(path.join(work, 'other_root.json')), 'utf8')) as Record<string, unknown>;
      const mixed = path.join(work, 'mixed_root.json');
      fs.writeFileSync(mixed, JSON.stringify({ ...ours, certificateAuthorities: theirs.certificateAuthorities }));
      const otherCa = await cosignVerify(ref, sigstore.identity, TEST_OIDC_ISSUER, mixed);
      expect(otherCa.code).not.toBe(0);
      expect(otherCa.stderr).toContain('leaf certificate verification failed');
    } finally {
      await other.close();
    }
  });

  it('is refused by the real cosign when the Rekor bundle is altered (the SET is checked)', async () => {
    const c = await client('mesh/keyless');
    try {
      const tag = `${digest.replace(':', '-')}.sig`;
      const original = await c.getManifest((await c.resolve(tag))!);
      const manifest = JSON.parse(original.toString('utf8')) as { layers: Array<{ annotations: Record<string, string> }> };
      const bundle = JSON.parse(manifest.layers[0].annotations[BUNDLE_ANNOTATION]) as RekorBundle;
      bundle.Payload.integratedTime += 1;
      manifest.layers[0].annotations[BUNDLE_ANNOTATION] = JSON.stringify(bundle);
      await c.putManifest(tag, Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json');
      try {
        const v = await cosignVerify(ref, sigstore.identity);
        expect(v.code).not.toBe(0);
        expect(v.stderr).toContain('unable to verify SET');
      } finally {
        await c.putManifest(tag, original, 'application/vnd.oci.image.manifest.v1+json');
      }
      const restored = await cosignVerify(ref, sigstore.identity);
      expect(restored.code, restored.stderr).toBe(0);
    } finally {
      c.close();
    }
  });

  it('adds a second keyless signature next to the first, and cosign still verifies', async () => {
    const c = await client('mesh/keyless');
    try {
      const record = await signImage({ client: c, digest, key: signer() });
      expect(record.signatures).toBe(2);
      expect(record.keyless?.logIndex).toBe(1);
    } finally {
      c.close();
    }
    const v = await cosignVerify(ref, sigstore.identity);
    expect(v.code, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as unknown[]).length).toBe(2);
  });

  it('writes nothing when the runner refuses the token, and says what to grant', async () => {
    const c = await client('mesh/keyless-refused');
    try {
      const d = await pushImage(c, 'v1', 'plugin refused');
      sigstore.failTokenWith(403);
      let error: unknown;
      try {
        await signImage({ client: c, digest: d, key: signer() });
      } catch (err) {
        error = err;
      } finally {
        sigstore.failTokenWith(undefined);
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/^GitHub's OIDC token request to http:\/\/127\.0\.0\.1:\d+ answered 403: does the job have `permissions: id-token: write`\?/);
      expect(await c.resolve(`${d.replace(':', '-')}.sig`)).toBeUndefined();
    } finally {
      c.close();
    }
  });
});

describe('verify before apply with a keyless identity (verifyImageKeyless), against what the real cosign decides', () => {
  let c: RegistryClient;
  let signed: string;
  let unsigned: string;
  let policy: KeylessPolicy;

  /** Our verdict (the failure reason, or 'ok') and the real cosign's exit code, for one image. */
  async function both(digest: string, p: KeylessPolicy = policy, cosignRoot = trustedRoot): Promise<{ ours: string; message: string; cosign: number }> {
    let ours = 'ok';
    let message = '';
    try {
      await verifyImageKeyless({ client: c, digest, policy: p });
    } catch (err) {
      if (!(err instanceof SignatureVerificationError)) throw err;
      ours = err.reason;
      message = err.message;
    }
    const v = await cosignVerify(`${registry.host}/mesh/keyless-verify@${digest}`, p.identity, p.issuer, cosignRoot);
    return { ours, message, cosign: v.code };
  }

  beforeAll(async () => {
    c = await client('mesh/keyless-verify');
    signed = await pushImage(c, 'signed', 'plugin to apply');
    unsigned = await pushImage(c, 'unsigned', 'plugin nobody signed');
    await signImage({ client: c, digest: signed, key: signer() });
    policy = { identity: sigstore.identity, issuer: TEST_OIDC_ISSUER, trustedRoot: parseTrustedRoot(fs.readFileSync(trustedRoot, 'utf8')) };
  });

  afterAll(() => c?.close());

  it('accepts the signed image, as cosign does', async () => {
    const logs: string[] = [];
    const record = await verifyImageKeyless({ client: c, digest: signed, policy, log: (l) => logs.push(l) });
    expect(record.reference).toBe(`${registry.host}/mesh/keyless-verify`);
    expect(logs[0]).toBe(`verified ${registry.host}/mesh/keyless-verify@${signed}: keyless signature by ${sigstore.identity} (issuer ${TEST_OIDC_ISSUER}), logged in Rekor (${registry.host}/mesh/keyless-verify:${signed.replace(':', '-')}.sig, 1 signature(s) checked)`);
    expect((await both(signed)).cosign).toBe(0);
  });

  it('refuses another identity or issuer, as cosign does', async () => {
    const identity = await both(signed, { ...policy, identity: 'https://github.com/example-org/other/.github/workflows/release.yml@refs/heads/main' });
    expect(identity.ours).toBe('identity-mismatch');
    expect(identity.message).toContain(`identity mismatch: the certificate is for ${sigstore.identity} from issuer ${TEST_OIDC_ISSUER}, not https://github.com/example-org/other/`);
    expect(identity.cosign).not.toBe(0);
    const issuer = await both(signed, { ...policy, issuer: 'https://accounts.google.com' });
    expect(issuer.ours).toBe('identity-mismatch');
    expect(issuer.cosign).not.toBe(0);
  });

  it('refuses a certificate from a CA the trusted root does not hold, as cosign does', async () => {
    const other = await startSigstore();
    try {
      const ours = JSON.parse(fs.readFileSync(trustedRoot, 'utf8')) as Record<string, unknown>;
      const theirs = JSON.parse(fs.readFileSync(other.trustedRootFile(path.join(work, 'other_root2.json')), 'utf8')) as Record<string, unknown>;
      const mixed = path.join(work, 'mixed_root2.json');
      fs.writeFileSync(mixed, JSON.stringify({ ...ours, certificateAuthorities: theirs.certificateAuthorities }));
      const r = await both(signed, { ...policy, trustedRoot: parseTrustedRoot(fs.readFileSync(mixed, 'utf8')) }, mixed);
      expect(r.ours).toBe('untrusted-certificate');
      expect(r.message).toContain('does not chain to a certificate authority of the trusted root');
      expect(r.cosign).not.toBe(0);
    } finally {
      await other.close();
    }
  });

  it('refuses an altered Rekor bundle and a log the trusted root does not list, as cosign does', async () => {
    const tag = `${signed.replace(':', '-')}.sig`;
    const original = await c.getManifest((await c.resolve(tag))!);
    const alter = async (change: (b: RekorBundle) => void): Promise<void> => {
      const manifest = JSON.parse(original.toString('utf8')) as { layers: Array<{ annotations: Record<string, string> }> };
      const bundle = JSON.parse(manifest.layers[0].annotations[BUNDLE_ANNOTATION]) as RekorBundle;
      change(bundle);
      manifest.layers[0].annotations[BUNDLE_ANNOTATION] = JSON.stringify(bundle);
      await c.putManifest(tag, Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json');
    };
    try {
      await alter((b) => {
        b.Payload.logIndex += 7;
      });
      const index = await both(signed);
      expect(index.ours).toBe('tlog');
      expect(index.message).toContain('transparency log: the Rekor bundle\'s signed entry timestamp does not verify with the log\'s key');
      expect(index.cosign).not.toBe(0);
      await alter((b) => {
        b.Payload.logID = 'ab'.repeat(32);
      });
      const unknownLog = await both(signed);
      expect(unknownLog.ours).toBe('tlog');
      expect(unknownLog.message).toContain(`the Rekor bundle is from log ${'ab'.repeat(32)}, which the trusted root does not list`);
      expect(unknownLog.cosign).not.toBe(0);
    } finally {
      await c.putManifest(tag, original, 'application/vnd.oci.image.manifest.v1+json');
    }
    expect((await both(signed)).ours).toBe('ok');
  });

  it('refuses a signature copied from another image (digest mismatch) and an image with none, as cosign does', async () => {
    const copied = `${unsigned.replace(':', '-')}.sig`;
    expect((await both(unsigned)).ours).toBe('no-signature');
    await c.putManifest(copied, await c.getManifest((await c.resolve(`${signed.replace(':', '-')}.sig`))!), 'application/vnd.oci.image.manifest.v1+json');
    const r = await both(unsigned);
    expect(r.ours).toBe('digest-mismatch');
    expect(r.message).toContain(`digest mismatch: the signature at ${registry.host}/mesh/keyless-verify:${copied} is valid but signs ${signed}, another image`);
    expect(r.cosign).not.toBe(0);
  });

  it('does not take a key-based signature for a keyless one', async () => {
    const keyed = await pushImage(c, 'keyed', 'plugin signed with a key');
    await signImage({ client: c, digest: keyed, key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey });
    const r = await both(keyed);
    expect(r.ours).toBe('untrusted-certificate');
    expect(r.message).toContain('no certificate (a key-based signature, not keyless)');
    expect(r.cosign).not.toBe(0);
  });
});

let stagePushed: { plugin: string; url: string };

describe('the push stage with sign: keyless', () => {
  it('signs what it pushed with the job\'s OIDC token; the real cosign accepts it for the job\'s identity, and the summary says how to check it', async () => {
    const wasm = ensureTemplateBuilt();
    const plugin = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
    const summary = path.join(work, 'summary.md');
    fs.writeFileSync(summary, '');
    const run = await runCli(
      [
        'push', '--plugin-dir', plugin, '--wasm-path', wasm,
        '--image', `${registry.host}/mesh/keyless-stage`, '--tags', 'v1',
        '--registry-ca', registry.caFile!, '--registry-username', registry.username!, '--registry-password', registry.password!,
        '--sign', 'keyless', '--json',
      ],
      {
        RUNNER_TOOL_CACHE: inject('toolCache'),
        GITHUB_STEP_SUMMARY: summary,
        ACTIONS_ID_TOKEN_REQUEST_URL: sigstore.tokenUrl,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
        SIGSTORE_FULCIO_URL: sigstore.fulcioUrl,
        SIGSTORE_REKOR_URL: sigstore.rekorUrl,
      },
    );
    expect(run.json?.error, run.stderr).toBeUndefined();
    const digest = run.json!.outputs.digest;
    expect(run.json!.outputs['signature-tag']).toBe(`${digest.replace(':', '-')}.sig`);
    const ref = `${registry.host}/mesh/keyless-stage@${digest}`;
    expect((await cosignVerify(ref, sigstore.identity)).code).toBe(0);
    expect((await cosignVerify(ref, 'https://github.com/someone-else/repo/.github/workflows/x.yml@refs/heads/main')).code).not.toBe(0);
    const text = fs.readFileSync(summary, 'utf8');
    expect(text).toContain('Signed (cosign, keyless)');
    expect(text).toContain(`--certificate-identity ${sigstore.identity} --certificate-oidc-issuer ${TEST_OIDC_ISSUER}`);
    // The request token never reaches the log.
    expect(run.stdout + run.stderr).not.toContain(REQUEST_TOKEN);
    stagePushed = { plugin, url: run.json!.outputs.url };
  });

  /** The deploy stage with verify-identity against the local API server. */
  async function deployKeyless(name: string, identity: string, root = trustedRoot) {
    return runCli(
      [
        'deploy', '--plugin-dir', stagePushed.plugin, '--name', name, '--url', stagePushed.url,
        '--verify-identity', identity, '--verify-trusted-root', root,
        '--registry-ca', registry.caFile!, '--registry-username', registry.username!, '--registry-password', registry.password!,
        '--kubeconfig', kube.kubeconfig('deployer'), '--json',
      ],
      { RUNNER_TOOL_CACHE: inject('toolCache') },
    );
  }
  const status = async (name: string) => (await kube.request('admin', 'GET', `/apis/extensions.istio.io/v1alpha1/namespaces/istio-system/wasmplugins/${name}`)).status;

  it('deploy applies the image only after its keyless signature verifies for verify-identity', async () => {
    expect(stagePushed, 'the push test above ran').toBeDefined();
    const run = await deployKeyless('keyless-verified', sigstore.identity);
    expect(run.json?.error, run.stderr).toBeUndefined();
    expect(run.json!.outputs.result).toBe('created');
    expect(await status('keyless-verified')).toBe(200);
  });

  it('deploy applies nothing for another identity, or a trusted root that does not hold the CA', async () => {
    const other = await deployKeyless('keyless-other', 'https://github.com/someone-else/repo/.github/workflows/x.yml@refs/heads/main');
    expect(other.json!.error).toMatch(/identity.*nothing was sent to the cluster$/);
    expect(await status('keyless-other')).toBe(404);
    const foreign = await startSigstore();
    try {
      const root = foreign.trustedRootFile(path.join(work, 'foreign_root.json'));
      const run = await deployKeyless('keyless-foreign', sigstore.identity, root);
      expect(run.json!.error).toMatch(/does not chain to a certificate authority of the trusted root.*nothing was sent to the cluster$/);
      expect(await status('keyless-foreign')).toBe(404);
    } finally {
      await foreign.close();
    }
  });
});
