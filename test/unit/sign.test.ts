// The signing layer's pure parts: the payload cosign signs, the signature
// tag and image, key parsing (cosign's encrypted key made here the way
// securesystemslib writes it), and the sign/verify inputs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPublicKey, generateKeyPairSync, randomBytes, scryptSync, sign, verify } from 'node:crypto';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { KeyError, decryptSigstoreKey, parsePrivateKey, parsePublicKey, publicKeyPem } from '../../src/sign/keys.js';
import {
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  buildPayload,
  buildSignatureImage,
  dockerReference,
  parsePayload,
  sameRepository,
  signatureLayer,
  signatureLayers,
  signatureTag,
} from '../../src/sign/payload.js';
import { imageOfUrl } from '../../src/sign/index.js';
import { verifySignature } from '../../src/sign/sign.js';
import { parseInputs } from '../../src/inputs.js';
import { sha256Digest } from '../../src/oci/image.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const root = path.resolve(import.meta.dirname, '../..');

/** A key file in the format `cosign generate-key-pair` writes (see src/sign/keys.ts), with chosen scrypt parameters. */
function encryptedKey(der: Buffer, password: string, params = { N: 32768, r: 8, p: 1 }): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = scryptSync(Buffer.from(password), salt, 32, { ...params, maxmem: 256 * 1024 * 1024 });
  const box = nacl.secretbox(der, nonce, key);
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64'),
  });
  const body = Buffer.from(json).toString('base64').replace(/(.{64})/g, '$1\n').trim();
  return `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
}

function p256() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey,
    pkcs8: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    pkcs8Der: privateKey.export({ format: 'der', type: 'pkcs8' }),
    sec1: privateKey.export({ format: 'pem', type: 'sec1' }).toString(),
    pub: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

describe('the payload cosign signs', () => {
  it('is the simple-signing JSON, byte for byte as cosign writes it', () => {
    expect(buildPayload('127.0.0.1:5000/team/plug', DIGEST).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/team/plug"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });

  it('reads back what it claims, and refuses other payload types', () => {
    expect(parsePayload(buildPayload('ghcr.io/o/p', DIGEST))).toEqual({ reference: 'ghcr.io/o/p', digest: DIGEST });
    expect(() => parsePayload(Buffer.from('{"critical":{"type":"atomic container signature"}}'))).toThrow(/critical.type/);
    expect(() => parsePayload(Buffer.from('not json'))).toThrow(/not JSON/);
    expect(() => buildPayload('ghcr.io/o/p', 'sha256:short')).toThrow();
  });

  it.each([
    ['registry.example.com:5000', 'team/plug', 'registry.example.com:5000/team/plug'],
    ['docker.io', 'team/plug', 'index.docker.io/team/plug'],
    ['docker.io', 'library/nginx', 'index.docker.io/library/nginx'],
    ['registry-1.docker.io', 'nginx', 'index.docker.io/library/nginx'],
  ])('names %s/%s as %s in docker-reference', (registry, repository, want) => {
    expect(dockerReference(registry, repository)).toBe(want);
  });

  it.each([
    ['index.docker.io/team/plug', 'docker.io/team/plug', true],
    ['team/plug', 'index.docker.io/team/plug', true],
    ['ghcr.io/o/p:v1', 'ghcr.io/o/p', true],
    [`127.0.0.1:5000/o/p@${DIGEST}`, '127.0.0.1:5000/o/p', true],
    ['ghcr.io/o/p', 'ghcr.io/o/other', false],
    ['ghcr.io/o/p', 'quay.io/o/p', false],
  ])('compares repositories: %s and %s → %s', (a, b, same) => {
    expect(sameRepository(a, b)).toBe(same);
  });

  it('keeps signatures at sha256-<hex>.sig', () => {
    expect(signatureTag(DIGEST)).toBe(`sha256-${'ab'.repeat(32)}.sig`);
    expect(() => signatureTag('latest')).toThrow();
  });
});

describe('the signature image', () => {
  it('is an OCI manifest of simple-signing layers, its config listing them as diff_ids', () => {
    const payload = buildPayload('ghcr.io/o/p', DIGEST);
    const layer = signatureLayer(payload, Buffer.from('sig'));
    const image = buildSignatureImage([layer]);
    const manifest = JSON.parse(image.manifest.toString());
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: image.config.length, digest: image.configDigest },
      layers: [{ mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest: sha256Digest(payload), size: payload.length, annotations: { [SIGNATURE_ANNOTATION]: Buffer.from('sig').toString('base64') } }],
    });
    expect(JSON.parse(image.config.toString()).rootfs).toEqual({ type: 'layers', diff_ids: [sha256Digest(payload)] });
    expect(image.digest).toBe(sha256Digest(image.manifest));
    expect(signatureLayers(image.manifest)).toEqual([layer]);
    expect(signatureLayers(Buffer.from('{}'))).toEqual([]);
  });
});

describe('keys', () => {
  it('reads PKCS#8 and SEC 1 P-256 keys, and signs what the public key verifies (ECDSA SHA-256, DER)', async () => {
    const k = p256();
    for (const pem of [k.pkcs8, k.sec1]) {
      const key = await parsePrivateKey(pem);
      const payload = buildPayload('ghcr.io/o/p', DIGEST);
      const sig = sign('sha256', payload, { key, dsaEncoding: 'der' });
      expect(verifySignature(payload, sig.toString('base64'), parsePublicKey(k.pub))).toBe(true);
      expect(verifySignature(Buffer.from('other'), sig.toString('base64'), parsePublicKey(k.pub))).toBe(false);
      expect(publicKeyPem(key)).toBe(k.pub);
    }
  });

  it('decrypts cosign\'s encrypted key with its password, and names a wrong password', async () => {
    const k = p256();
    const file = encryptedKey(k.pkcs8Der, 'correct horse');
    const key = await parsePrivateKey(file, 'correct horse');
    const payload = Buffer.from('x');
    expect(verify('sha256', payload, createPublicKey(k.pub), sign('sha256', payload, key))).toBe(true);
    await expect(parsePrivateKey(file, 'wrong')).rejects.toThrow(/password \(sign-key-password\) is wrong/);
    await expect(parsePrivateKey(file)).rejects.toThrow(KeyError);
    // cosign allows an empty password
    expect((await parsePrivateKey(encryptedKey(k.pkcs8Der, ''), '')).asymmetricKeyType).toBe('ec');
  });

  it('refuses scrypt parameters cosign never writes (a key file must not make us spend unbounded memory)', async () => {
    const k = p256();
    const file = encryptedKey(k.pkcs8Der, 'pw', { N: 1024, r: 8, p: 1 });
    await expect(parsePrivateKey(file, 'pw')).rejects.toThrow(/scrypt parameters .* cosign does not write/);
    const body = Buffer.from(JSON.stringify({ kdf: { name: 'argon2' }, cipher: { name: 'nacl/secretbox' } }));
    await expect(decryptSigstoreKey(body, 'pw')).rejects.toThrow(/only scrypt/);
  });

  it.each([
    ['a P-384 key', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), /EC key on secp384r1; only ECDSA P-256/],
    ['an RSA key', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), /rsa key; only ECDSA P-256/],
    ['not PEM', () => 'hello', /not PEM/],
    ['a certificate', () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /"CERTIFICATE" PEM block/],
    ['a password-encrypted PKCS#8 key', () => '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n', /ENCRYPTED PRIVATE KEY/],
  ])('refuses %s as the signing key', async (_what, make, message) => {
    await expect(parsePrivateKey(make())).rejects.toThrow(message);
  });

  it('reads cosign.pub and refuses a private key or another curve as the verification key', () => {
    const k = p256();
    expect(parsePublicKey(k.pub).asymmetricKeyType).toBe('ec');
    expect(() => parsePublicKey(k.pkcs8)).toThrow(/"PRIVATE KEY" PEM block; expected PUBLIC KEY/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => parsePublicKey(p384)).toThrow(/only ECDSA P-256/);
  });
});

describe('the image a WasmPlugin url names', () => {
  it.each([
    [`oci://127.0.0.1:5000/team/plug@${DIGEST}`, { registry: '127.0.0.1:5000', repository: 'team/plug', digest: DIGEST }],
    ['oci://ghcr.io/o/p:v1', { registry: 'ghcr.io', repository: 'o/p', digest: undefined }],
    [`oci://ghcr.io/o/p:v1@${DIGEST}`, { registry: 'ghcr.io', repository: 'o/p', digest: DIGEST }],
    ['https://example.com/plugin.wasm', undefined],
  ])('%s', (url, want) => {
    expect(imageOfUrl(url)).toEqual(want);
  });
});

describe('signing inputs', () => {
  const keyFile = (): { dir: string; file: string; pem: string } => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-sign-'));
    const pem = p256().pkcs8;
    const file = path.join(dir, 'cosign.key');
    fs.writeFileSync(file, pem);
    return { dir, file, pem };
  };

  it('is off by default, and `sign: true` reads the key as PEM text or from a file', () => {
    expect(parseInputs({}, root)).toMatchObject({ sign: 'none', signKey: undefined });
    const { dir, file, pem } = keyFile();
    expect(parseInputs({ sign: 'true', 'sign-key': pem }, root)).toMatchObject({ sign: 'key', signKey: pem });
    expect(parseInputs({ 'plugin-dir': root, sign: 'key', 'sign-key': 'cosign.key', 'sign-key-password': 'pw' }, dir)).toMatchObject({ sign: 'key', signKey: pem, signKeyPassword: 'pw' });
    expect(parseInputs({ 'plugin-dir': root, 'verify-key': file }, dir).verifyKey).toBe(pem);
    expect(parseInputs({ sign: 'keyless' }, root).sign).toBe('keyless');
    fs.rmSync(dir, { recursive: true });
  });

  it.each([
    [{ sign: 'true' }, /`sign` is true but `sign-key` is empty/],
    [{ 'sign-key': 'x.key' }, /`sign-key` is set but `sign` is false/],
    [{ sign: 'maybe' }, /`sign` must be false, true \(key\) or keyless/],
    [{ sign: 'true', 'sign-key': 'missing.key' }, /neither PEM text .* nor an existing file/],
    [{ 'verify-key': 'nope.pub' }, /`verify-key` is neither PEM text/],
  ])('refuses %o', (raw, message) => {
    expect(() => parseInputs(raw, root)).toThrow(message);
  });

  it('never echoes key material given in the wrong shape', () => {
    const secret = Buffer.from(p256().pkcs8).toString('base64').replace(/(.{64})/g, '$1\n');
    let message = '';
    try {
      parseInputs({ sign: 'true', 'sign-key': secret }, root);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/`sign-key` is not PEM text/);
    expect(message).not.toContain(secret.slice(0, 40));
  });
});
