// Signing what the push stage pushed and verifying it before the deploy
// stage applies it, in the format cosign reads and writes:
//
//   keys.ts     cosign's encrypted private key, PKCS#8/SEC 1 EC keys, cosign.pub
//   payload.ts  the simple-signing payload, the signature tag and image (pure)
//   sign.ts     add a signature to the image's signature image in the registry
//   keyless.ts  sign: keyless — GitHub's OIDC token, Fulcio, Rekor (@sigstore/sign)
//   verify.ts   find and check a signature for a digest, naming what failed
//   verify-keyless.ts  the same for a keyless signature: trusted root, identity, Rekor SET
//
// None of it talks to the runner: the stages (src/stages/push/, src/stages/deploy/) log, mask and
// set outputs.

export { KeyError, parsePrivateKey, parsePublicKey, publicKeyPem } from './keys.js';
export { buildPayload, dockerReference, parsePayload, signatureTag, SIMPLE_SIGNING_MEDIA_TYPE, SIGNATURE_ANNOTATION } from './payload.js';
export { signImage, type SignRecord, type SigningKey } from './sign.js';
export {
  BUNDLE_ANNOTATION,
  CERTIFICATE_ANNOTATION,
  CHAIN_ANNOTATION,
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  KeylessSigner,
  certificateIdentity,
  keylessAnnotations,
  oidcRequestFromEnv,
  requestOidcToken,
  type KeylessOptions,
  type KeylessSignature,
  type RekorBundle,
} from './keyless.js';
export { SignatureVerificationError, verifyImage, type VerifyRecord, type VerificationFailure } from './verify.js';
export { parseTrustedRoot, verifyImageKeyless, type KeylessPolicy, type TrustedRoot } from './verify-keyless.js';

/** How signing is asked for: not at all, with a key, or keyless (Sigstore: GitHub's OIDC token, Fulcio, Rekor). */
export type SignMode = 'none' | 'key' | 'keyless';

// The registry client the stages verify and sign with.
export { openRepository, type RepositoryOptions } from '../oci/registry/index.js';

/**
 * The registry, repository and digest of a WasmPlugin url
 * (`oci://host[:port]/repo[:tag][@sha256:…]`); undefined for any other scheme.
 * The digest is the one the url is pinned to, if any.
 */
export function imageOfUrl(url: string): { registry: string; repository: string; digest?: string } | undefined {
  const m = /^oci:\/\/([^/]+)\/([^@]+?)(?:@(sha256:[0-9a-fA-F]{64}))?$/.exec(url.trim());
  if (!m) return undefined;
  let repository = m[2];
  const colon = repository.lastIndexOf(':');
  if (colon > repository.lastIndexOf('/')) repository = repository.slice(0, colon);
  return { registry: m[1], repository, digest: m[3]?.toLowerCase() };
}
