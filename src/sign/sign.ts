// Signs a pushed image the way `cosign sign --key` does in its classic
// format (see payload.ts): one more layer in the signature image at
// `sha256-<hex>.sig`, keeping the signatures already there. Signing the same
// digest again with the same key adds nothing (cosign does the same), so a
// re-run of the job leaves the signature image as it was.
//
// Keyless (a KeylessSigner in place of the key, see keyless.ts): the layer
// also carries the Fulcio certificate, its chain and the Rekor bundle, as
// `cosign sign` writes them. Each keyless signing uses a new ephemeral key
// and a new Rekor entry, so it always adds a layer (as cosign does).
import { createPublicKey, sign as ecSign, verify as ecVerify, type KeyObject } from 'node:crypto';
import { UserError } from '../errors.js';
import { sha256Digest } from '../oci/image.js';
import type { RegistryClient } from '../oci/registry/index.js';
import {
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  buildPayload,
  buildSignatureImage,
  dockerReference,
  signatureLayer,
  signatureLayers,
  type SignatureLayer,
  signatureTag,
} from './payload.js';
import { KeylessSigner, certificateIdentity, keylessAnnotations } from './keyless.js';

/** What the push stage signs with: a private key (sign: true) or Sigstore keyless (sign: keyless). */
export type SigningKey = KeyObject | KeylessSigner;

export interface SignImageOptions {
  /** A client for the image's repository (already pinged). */
  client: RegistryClient;
  /** The image manifest digest to sign (sha256:…). */
  digest: string;
  key: SigningKey;
  log?: (line: string) => void;
}

export interface SignRecord {
  /** sha256-<hex>.sig */
  tag: string;
  /** host/repository:sha256-<hex>.sig */
  ref: string;
  /** The signature image's manifest digest after signing. */
  signatureDigest: string;
  /** critical.identity.docker-reference of the payload. */
  reference: string;
  /** Signatures in the signature image (ours and any made before). */
  signatures: number;
  /** True when this key had already signed this digest: nothing was written. */
  reused: boolean;
  /** key, or keyless (Fulcio certificate + Rekor entry). */
  mode: 'key' | 'keyless';
  /** Keyless: the certificate's identity (SAN) and OIDC issuer, and the Rekor entry's index and log. */
  keyless?: { identity?: string; issuer?: string; logIndex: number; rekorUrl: string; fulcioUrl: string };
}

/** Verifies one base64 signature over `payload` with `key` (ECDSA, SHA-256, DER); false on anything malformed. */
export function verifySignature(payload: Buffer, b64: string | undefined, key: KeyObject): boolean {
  if (!b64) return false;
  try {
    return ecVerify('sha256', payload, { key, dsaEncoding: 'der' }, Buffer.from(b64, 'base64'));
  } catch {
    return false;
  }
}

export async function signImage(options: SignImageOptions): Promise<SignRecord> {
  const { client, digest, key } = options;
  const log = options.log ?? (() => {});
  const tag = signatureTag(digest);
  const ref = `${client.ref}:${tag}`;
  const reference = dockerReference(client.address.host, client.repository);
  const payload = buildPayload(reference, digest);

  const existingDigest = await client.resolve(tag);
  const existing = existingDigest ? signatureLayers(await client.getManifest(existingDigest)) : [];
  const payloadDigest = sha256Digest(payload);
  let layer: SignatureLayer;
  let keyless: SignRecord['keyless'];
  if (key instanceof KeylessSigner) {
    const s = await key.sign(payload);
    layer = { ...signatureLayer(payload, s.signature), annotations: keylessAnnotations(s) };
    keyless = { ...certificateIdentity(s.certificate), logIndex: s.bundle.Payload.logIndex, rekorUrl: key.rekorUrl, fulcioUrl: key.fulcioUrl };
    log(`keyless: certificate for ${keyless.identity ?? '(no identity)'} (issuer ${keyless.issuer ?? 'unknown'}) from ${key.fulcioUrl}, Rekor entry ${keyless.logIndex} at ${key.rekorUrl}`);
  } else {
    const publicKey = createPublicKey(key);
    const already = existing.find(
      (l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE && l.digest === payloadDigest && verifySignature(payload, l.annotations?.[SIGNATURE_ANNOTATION], publicKey),
    );
    if (already && existingDigest) {
      log(`${ref} already holds a signature of ${digest} by this key; nothing to add`);
      return { tag, ref, signatureDigest: existingDigest, reference, signatures: existing.length, reused: true, mode: 'key' };
    }
    layer = signatureLayer(payload, ecSign('sha256', payload, { key, dsaEncoding: 'der' }));
  }
  const layers = [...existing, layer];
  const image = buildSignatureImage(layers);
  for (const blob of [
    { digest: payloadDigest, data: payload },
    { digest: image.configDigest, data: image.config },
  ]) {
    if (!(await client.blobExists(blob.digest))) await client.uploadBlob(blob);
  }
  await client.putManifest(tag, image.manifest, image.mediaType);
  const now = await client.resolve(tag);
  if (now !== image.digest) throw new UserError(`after writing the signature, ${ref} names ${now ?? 'nothing'} instead of ${image.digest}`);
  log(`signed ${client.ref}@${digest}: ${ref} (${layers.length} signature(s))`);
  return { tag, ref, signatureDigest: image.digest, reference, signatures: layers.length, reused: false, mode: keyless ? 'keyless' : 'key', keyless };
}
