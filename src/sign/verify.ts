// Verifies an image's cosign signature (classic format, see payload.ts) with
// a public key, before the deploy stage sends anything to the cluster. A
// signature counts only when all of these hold for one layer of the
// signature image at `sha256-<hex>.sig`:
//   - the payload blob is what the layer's digest says;
//   - the signature annotation verifies over it with the key (ECDSA P-256, SHA-256);
//   - its critical.image.docker-manifest-digest is the digest being applied;
//   - its critical.identity.docker-reference names the image's repository.
// Otherwise the error names what failed: no signature, wrong key, a signature
// of another digest (a copied signature) or of another repository.
import type { KeyObject } from 'node:crypto';
import { UserError } from '../errors.js';
import { sha256Digest } from '../oci/image.js';
import type { RegistryClient } from '../oci/registry/index.js';
import { SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, parsePayload, sameRepository, signatureLayers, signatureTag, type SignatureLayer } from './payload.js';
import { verifySignature } from './sign.js';

export type VerificationFailure =
  | 'no-signature'
  | 'wrong-key'
  | 'digest-mismatch'
  | 'repository-mismatch'
  // keyless (verify-keyless.ts)
  | 'untrusted-certificate'
  | 'identity-mismatch'
  | 'tlog'
  | 'bad-signature';

export class SignatureVerificationError extends UserError {
  constructor(
    readonly reason: VerificationFailure,
    message: string,
  ) {
    super(message);
    this.name = 'SignatureVerificationError';
  }
}

export interface VerifyImageOptions {
  client: RegistryClient;
  digest: string;
  key: KeyObject;
  log?: (line: string) => void;
}

export interface VerifyRecord {
  /** host/repository:sha256-<hex>.sig */
  ref: string;
  signatureDigest: string;
  /** Signatures looked at. */
  checked: number;
  /** The docker-reference the verified payload claims. */
  reference: string;
}

/**
 * cosign 3 signs by default as a Sigstore bundle attached as a referrer
 * (artifact type application/vnd.in-toto+json), which a registry without
 * the referrers API lists in an index tagged sha256-<hex>. Only said in the
 * error, so it looks at that tag alone.
 */
async function hasSigstoreBundle(client: RegistryClient, digest: string): Promise<boolean> {
  const index = await client.resolve(digest.replace(':', '-'));
  if (!index) return false;
  try {
    const parsed = JSON.parse((await client.getManifest(index)).toString('utf8')) as { manifests?: Array<{ artifactType?: string }> };
    return (parsed.manifests ?? []).some((m) => m.artifactType === 'application/vnd.in-toto+json' || m.artifactType?.includes('sigstore.bundle'));
  } catch {
    return false;
  }
}

/** The cosign signature image of a digest: where it is, and its signature layers. */
export interface SignatureImage {
  /** registry/repository@digest */
  image: string;
  /** registry/repository:sha256-<hex>.sig */
  ref: string;
  signatureDigest: string;
  layers: SignatureLayer[];
}

/**
 * Reads the signature image at `sha256-<hex>.sig` for `digest` and its cosign
 * signature layers; no image there or no signature layer in it is a
 * `no-signature` failure (`howToSign` ends the first message).
 */
export async function readSignatureImage(client: RegistryClient, digest: string, howToSign: () => Promise<string>): Promise<SignatureImage> {
  const image = `${client.ref}@${digest}`;
  const tag = signatureTag(digest);
  const ref = `${client.ref}:${tag}`;
  const signatureDigest = await client.resolve(tag);
  if (!signatureDigest) {
    throw new SignatureVerificationError('no-signature', `signature verification failed for ${image}: no signature (nothing at ${ref})${await howToSign()}`);
  }
  const manifest = await client.getManifest(signatureDigest);
  if (sha256Digest(manifest) !== signatureDigest) throw new UserError(`registry ${client.address.host} returned a manifest for ${ref} whose bytes do not match its digest ${signatureDigest}`);
  const layers = signatureLayers(manifest).filter((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE && l.annotations?.[SIGNATURE_ANNOTATION]);
  if (layers.length === 0) {
    throw new SignatureVerificationError('no-signature', `signature verification failed for ${image}: no signature (${ref} holds no cosign signature layer)`);
  }
  return { image, ref, signatureDigest, layers };
}

export async function verifyImage(options: VerifyImageOptions): Promise<VerifyRecord> {
  const { client, digest, key } = options;
  const log = options.log ?? (() => {});
  const { image, ref, signatureDigest, layers } = await readSignatureImage(client, digest, async () =>
    (await hasSigstoreBundle(client, digest))
      ? '; a Sigstore bundle is attached instead, a format this action does not read yet: sign with this action (sign: true) or with cosign sign --new-bundle-format=false'
      : '; sign it in the push stage (sign: true) or with cosign sign --key',
  );
  const otherDigests: string[] = [];
  const otherRepositories: string[] = [];
  for (const layer of layers) {
    const payload = await client.getBlob(layer.digest);
    if (sha256Digest(payload) !== layer.digest) continue;
    if (!verifySignature(payload, layer.annotations?.[SIGNATURE_ANNOTATION], key)) continue;
    let claims: { reference: string; digest: string };
    try {
      claims = parsePayload(payload);
    } catch {
      continue;
    }
    if (claims.digest !== digest) {
      otherDigests.push(claims.digest);
      continue;
    }
    if (!sameRepository(claims.reference, client.ref)) {
      otherRepositories.push(claims.reference);
      continue;
    }
    log(`verified ${image}: signed by the verification key (${ref}, ${layers.length} signature(s) checked)`);
    return { ref, signatureDigest, checked: layers.length, reference: claims.reference };
  }
  if (otherDigests.length > 0) {
    throw new SignatureVerificationError(
      'digest-mismatch',
      `signature verification failed for ${image}: digest mismatch: the signature at ${ref} verifies with the key but signs ${otherDigests[0]}, another image`,
    );
  }
  if (otherRepositories.length > 0) {
    throw new SignatureVerificationError(
      'repository-mismatch',
      `signature verification failed for ${image}: repository mismatch: the signature at ${ref} verifies with the key but names ${otherRepositories[0]}, not ${client.ref}`,
    );
  }
  throw new SignatureVerificationError(
    'wrong-key',
    `signature verification failed for ${image}: wrong key: none of the ${layers.length} signature(s) at ${ref} verifies with the verification key (verify-key)`,
  );
}
