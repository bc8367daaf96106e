// What a cosign signature signs, and where it lives in the registry (the
// classic scheme, which `cosign verify` reads when no Sigstore bundle is
// attached to the image):
//
// - the payload is "simple signing" JSON (containers-signature(5), as
//   sigstore's payload package writes it for cosign):
//     {"critical":{"identity":{"docker-reference":"<registry>/<repository>"},
//                  "image":{"docker-manifest-digest":"sha256:<hex>"},
//                  "type":"cosign container image signature"},
//      "optional":null}
// - the signature is ECDSA P-256 over SHA-256 of the payload bytes, ASN.1 DER,
//   base64 in the layer annotation `dev.cosignproject.cosign/signature`;
// - the signature image sits in the same repository under the tag
//   `sha256-<hex>.sig`: an OCI image manifest whose layers are payloads of
//   media type application/vnd.dev.cosign.simplesigning.v1+json, one per
//   signature.
// Nothing here touches the network: sign.ts and verify.ts do.
import { sha256Digest } from '../oci/image.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** The tag cosign keeps an image's signatures under: sha256:<hex> → sha256-<hex>.sig. */
export function signatureTag(digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return `${digest.replace(':', '-')}.sig`;
}

/**
 * A repository as cosign names it in `docker-reference`: registry host and
 * repository, with Docker Hub spelt index.docker.io and its one-part names
 * under library/ (go-containerregistry's normal form).
 */
export function dockerReference(registry: string, repository: string): string {
  const host = registry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host.toLowerCase())) {
    return `index.docker.io/${repository.includes('/') ? repository : `library/${repository}`}`;
  }
  return `${host}/${repository}`;
}

/** Two docker references name the same repository (Docker Hub's spellings and a tag or digest aside). */
export function sameRepository(a: string, b: string): boolean {
  const norm = (r: string): string => {
    let bare = r.replace(/@sha256:[0-9a-f]+$/, '');
    const colon = bare.lastIndexOf(':');
    if (colon > bare.lastIndexOf('/')) bare = bare.slice(0, colon);
    const slash = bare.indexOf('/');
    if (slash < 0) return dockerReference('docker.io', bare);
    const first = bare.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') return dockerReference(first, bare.slice(slash + 1));
    return dockerReference('docker.io', bare);
  };
  return norm(a) === norm(b);
}

/** The exact payload bytes we sign (key order and `"optional":null` as cosign writes them). */
export function buildPayload(reference: string, digest: string): Buffer {
  if (!DIGEST_RE.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
      optional: null,
    }),
  );
}

export interface SignedClaims {
  reference: string;
  digest: string;
}

/** Reads a payload; throws with what is wrong when it is not a cosign image signature payload. */
export function parsePayload(payload: Buffer): SignedClaims {
  let parsed: { critical?: { identity?: { 'docker-reference'?: unknown }; image?: { 'docker-manifest-digest'?: unknown }; type?: unknown } };
  try {
    parsed = JSON.parse(payload.toString('utf8')) as typeof parsed;
  } catch {
    throw new Error('the signed payload is not JSON');
  }
  const c = parsed?.critical;
  if (c?.type !== COSIGN_SIGNATURE_TYPE) throw new Error(`the signed payload's critical.type is ${JSON.stringify(c?.type)}, not "${COSIGN_SIGNATURE_TYPE}"`);
  const digest = c.image?.['docker-manifest-digest'];
  const reference = c.identity?.['docker-reference'];
  if (typeof digest !== 'string' || typeof reference !== 'string') throw new Error('the signed payload has no critical.image.docker-manifest-digest or critical.identity.docker-reference');
  return { reference, digest };
}

export interface SignatureLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** One signature: the payload blob and its layer descriptor. */
export function signatureLayer(payload: Buffer, signature: Buffer): SignatureLayer {
  return { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest: sha256Digest(payload), size: payload.length, annotations: { [SIGNATURE_ANNOTATION]: signature.toString('base64') } };
}

export interface SignatureImage {
  manifest: Buffer;
  mediaType: string;
  digest: string;
  config: Buffer;
  configDigest: string;
}

/**
 * The signature image holding `layers`: an OCI manifest with a config that
 * lists the layers' digests as its diff_ids (the payloads are not compressed,
 * so a layer's diff id is its digest), as go-containerregistry builds it.
 */
export function buildSignatureImage(layers: SignatureLayer[]): SignatureImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const configDigest = sha256Digest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: configDigest },
      layers,
    }),
  );
  return { manifest, mediaType: OCI_MANIFEST, digest: sha256Digest(manifest), config, configDigest };
}

/** The layers of a signature image's manifest (an empty list when it has none or is not one). */
export function signatureLayers(manifest: Buffer): SignatureLayer[] {
  let parsed: { layers?: unknown };
  try {
    parsed = JSON.parse(manifest.toString('utf8')) as { layers?: unknown };
  } catch {
    return [];
  }
  if (!Array.isArray(parsed.layers)) return [];
  return parsed.layers.filter(
    (l): l is SignatureLayer => typeof l === 'object' && l !== null && typeof (l as SignatureLayer).digest === 'string' && typeof (l as SignatureLayer).mediaType === 'string',
  );
}
