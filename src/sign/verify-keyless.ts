// Verifies a keyless cosign signature (classic layout, see keyless.ts) of an
// image against an expected identity, before the deploy stage applies it. A
// signature counts only when all of these hold for one layer of the
// signature image at `sha256-<hex>.sig`:
//   - the payload blob is what the layer's digest says;
//   - the certificate (dev.sigstore.cosign/certificate) chains to a
//     certificate authority of the trusted root (Sigstore's trusted_root.json:
//     the public one, or a private deployment's), is for code signing, and
//     was valid when Rekor logged the signature;
//   - its identity (SAN: URI or email) and OIDC issuer (Fulcio's extension)
//     are exactly the expected ones;
//   - the signature verifies over the payload with the certificate's key;
//   - the Rekor bundle (dev.sigstore.cosign/bundle) is signed (SET) by a
//     transparency log of the trusted root, and its entry is a hashedrekord
//     of exactly this payload hash, signature and certificate;
//   - the payload names the digest being applied and the image's repository.
// Otherwise the error names what failed.
import { X509Certificate, createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { UserError } from '../errors.js';
import { sha256Digest } from '../oci/image.js';
import type { RegistryClient } from '../oci/registry/index.js';
import { BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, certificateIdentity, type RekorBundle } from './keyless.js';
import { SIGNATURE_ANNOTATION, parsePayload, sameRepository } from './payload.js';
import { SignatureVerificationError, readSignatureImage, type VerificationFailure, type VerifyRecord } from './verify.js';

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/** What a Sigstore trusted root says to trust: certificate chains (issuer first, root last) and transparency logs by log ID. */
export interface TrustedRoot {
  authorities: X509Certificate[][];
  /** hex log ID → the log's public key */
  logs: Map<string, KeyObject>;
}

/** Reads a Sigstore trusted root (trusted_root.json, media type application/vnd.dev.sigstore.trustedroot+json). */
export function parseTrustedRoot(json: string): TrustedRoot {
  let parsed: {
    certificateAuthorities?: Array<{ certChain?: { certificates?: Array<{ rawBytes?: string }> } }>;
    tlogs?: Array<{ publicKey?: { rawBytes?: string }; logId?: { keyId?: string } }>;
  };
  try {
    parsed = JSON.parse(json) as typeof parsed;
  } catch {
    throw new UserError('the trusted root is not JSON: give a Sigstore trusted_root.json (cosign trusted-root create, or the one TUF serves)');
  }
  const authorities: X509Certificate[][] = [];
  for (const ca of parsed.certificateAuthorities ?? []) {
    try {
      const chain = (ca.certChain?.certificates ?? []).map((c) => new X509Certificate(Buffer.from(c.rawBytes ?? '', 'base64')));
      if (chain.length > 0) authorities.push(chain);
    } catch (err) {
      throw new UserError(`the trusted root has a certificate authority whose chain cannot be read: ${(err as Error).message}`);
    }
  }
  const logs = new Map<string, KeyObject>();
  for (const log of parsed.tlogs ?? []) {
    if (!log.publicKey?.rawBytes || !log.logId?.keyId) continue;
    try {
      logs.set(Buffer.from(log.logId.keyId, 'base64').toString('hex'), createPublicKey({ key: Buffer.from(log.publicKey.rawBytes, 'base64'), format: 'der', type: 'spki' }));
    } catch (err) {
      throw new UserError(`the trusted root has a transparency log whose key cannot be read: ${(err as Error).message}`);
    }
  }
  if (authorities.length === 0) throw new UserError('the trusted root lists no certificate authority (certificateAuthorities)');
  if (logs.size === 0) throw new UserError('the trusted root lists no transparency log (tlogs)');
  return { authorities, logs };
}

export interface KeylessPolicy {
  /** The certificate's SAN, exactly: for GitHub Actions https://github.com/<owner>/<repo>/<workflow path>@<ref>. */
  identity: string;
  /** The OIDC issuer, exactly: https://token.actions.githubusercontent.com for GitHub Actions. */
  issuer: string;
  trustedRoot: TrustedRoot;
}

export type KeylessFailure = Exclude<VerificationFailure, 'no-signature' | 'wrong-key'>;

/** Why one layer does not count, or undefined when it does. */
function checkLayer(payload: Buffer, annotations: Record<string, string>, policy: KeylessPolicy): { reason: KeylessFailure; detail: string } | undefined {
  const pem = annotations[CERTIFICATE_ANNOTATION];
  if (!pem) return { reason: 'untrusted-certificate', detail: 'no certificate (a key-based signature, not keyless)' };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pem);
  } catch {
    return { reason: 'untrusted-certificate', detail: 'the certificate cannot be read' };
  }
  const chain = policy.trustedRoot.authorities.find((c) => chainsTo(leaf, c));
  if (!chain) return { reason: 'untrusted-certificate', detail: `the certificate (issuer ${leaf.issuer.replace(/\n/g, ', ')}) does not chain to a certificate authority of the trusted root` };
  if (!(leaf.keyUsage ?? []).includes(CODE_SIGNING)) return { reason: 'untrusted-certificate', detail: 'the certificate is not for code signing' };
  const { identity, issuer } = certificateIdentity(pem);
  if (identity !== policy.identity || issuer !== policy.issuer) {
    return { reason: 'identity-mismatch', detail: `the certificate is for ${identity ?? '(no identity)'} from issuer ${issuer ?? '(none)'}, not ${policy.identity} from ${policy.issuer}` };
  }
  const signature = Buffer.from(annotations[SIGNATURE_ANNOTATION] ?? '', 'base64');
  if (!verifies(payload, leaf.publicKey, signature)) return { reason: 'bad-signature', detail: 'the signature does not verify over the payload with the certificate\'s key' };
  const tlog = checkBundle(annotations[BUNDLE_ANNOTATION], payload, signature, leaf, policy.trustedRoot);
  if (tlog) return { reason: 'tlog', detail: tlog };
  return undefined;
}

/** ECDSA (DER) over SHA-256 of `data`; false on anything malformed. */
function verifies(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/** The leaf is issued by chain[0], each certificate by the next, and the last is self-signed. */
function chainsTo(leaf: X509Certificate, chain: X509Certificate[]): boolean {
  const all = [leaf, ...chain];
  for (let i = 0; i < all.length; i++) {
    const issuer = all[i + 1] ?? all[i];
    if (!all[i].checkIssued(issuer) || !all[i].verify(issuer.publicKey)) return false;
  }
  return true;
}

/** Why the Rekor bundle does not vouch for this signature, or undefined when it does. */
function checkBundle(raw: string | undefined, payload: Buffer, signature: Buffer, leaf: X509Certificate, root: TrustedRoot): string | undefined {
  if (!raw) return 'no Rekor bundle (dev.sigstore.cosign/bundle): the signature was not logged';
  let bundle: RekorBundle;
  try {
    bundle = JSON.parse(raw) as RekorBundle;
  } catch {
    return 'the Rekor bundle is not JSON';
  }
  const p = bundle.Payload;
  if (!p || typeof p.body !== 'string' || !Number.isSafeInteger(p.integratedTime) || !Number.isSafeInteger(p.logIndex) || typeof p.logID !== 'string') return 'the Rekor bundle lacks body, integratedTime, logIndex or logID';
  const logKey = root.logs.get(p.logID.toLowerCase());
  if (!logKey) return `the Rekor bundle is from log ${p.logID}, which the trusted root does not list`;
  // The SET signs the canonical JSON of the entry: keys in sorted order.
  const canonical = JSON.stringify({ body: p.body, integratedTime: p.integratedTime, logID: p.logID, logIndex: p.logIndex });
  if (!verifies(Buffer.from(canonical), logKey, Buffer.from(bundle.SignedEntryTimestamp ?? '', 'base64'))) return 'the Rekor bundle\'s signed entry timestamp does not verify with the log\'s key';
  let entry: { kind?: string; spec?: { data?: { hash?: { algorithm?: string; value?: string } }; signature?: { content?: string; publicKey?: { content?: string } } } };
  try {
    entry = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8')) as typeof entry;
  } catch {
    return 'the Rekor entry body is not JSON';
  }
  if (entry.kind !== 'hashedrekord') return `the Rekor entry is a ${String(entry.kind)}, not a hashedrekord`;
  const hash = entry.spec?.data?.hash;
  if (hash?.algorithm !== 'sha256' || hash.value !== createHash('sha256').update(payload).digest('hex')) return 'the Rekor entry is for another payload hash';
  if (!Buffer.from(entry.spec?.signature?.content ?? '', 'base64').equals(signature)) return 'the Rekor entry holds another signature';
  let logged: X509Certificate | undefined;
  try {
    logged = new X509Certificate(Buffer.from(entry.spec?.signature?.publicKey?.content ?? '', 'base64'));
  } catch {
    logged = undefined;
  }
  if (!logged?.raw.equals(leaf.raw)) return 'the Rekor entry holds another certificate';
  const at = p.integratedTime * 1000;
  if (at < Date.parse(leaf.validFrom) || at > Date.parse(leaf.validTo)) return `the signature was logged at ${new Date(at).toISOString()}, outside the certificate's validity (${leaf.validFrom} to ${leaf.validTo})`;
  return undefined;
}

export interface VerifyKeylessOptions {
  client: RegistryClient;
  digest: string;
  policy: KeylessPolicy;
  log?: (line: string) => void;
}

const ORDER: KeylessFailure[] = ['digest-mismatch', 'repository-mismatch', 'identity-mismatch', 'tlog', 'bad-signature', 'untrusted-certificate'];
const WORDS: Record<KeylessFailure, string> = {
  'digest-mismatch': 'digest mismatch',
  'repository-mismatch': 'repository mismatch',
  'identity-mismatch': 'identity mismatch',
  tlog: 'transparency log',
  'bad-signature': 'bad signature',
  'untrusted-certificate': 'untrusted certificate',
};

export async function verifyImageKeyless(options: VerifyKeylessOptions): Promise<VerifyRecord> {
  const { client, digest, policy } = options;
  const log = options.log ?? (() => {});
  const { image, ref, signatureDigest, layers } = await readSignatureImage(client, digest, async () => '; sign it in the push stage (sign: keyless)');
  const failures: Array<{ reason: KeylessFailure; detail: string }> = [];
  for (const layer of layers) {
    const payload = await client.getBlob(layer.digest);
    if (sha256Digest(payload) !== layer.digest) continue;
    const failed = checkLayer(payload, layer.annotations ?? {}, policy);
    if (failed) {
      failures.push(failed);
      continue;
    }
    let claims: { reference: string; digest: string };
    try {
      claims = parsePayload(payload);
    } catch (err) {
      failures.push({ reason: 'bad-signature', detail: (err as Error).message });
      continue;
    }
    if (claims.digest !== digest) {
      failures.push({ reason: 'digest-mismatch', detail: `the signature at ${ref} is valid but signs ${claims.digest}, another image` });
      continue;
    }
    if (!sameRepository(claims.reference, client.ref)) {
      failures.push({ reason: 'repository-mismatch', detail: `the signature at ${ref} is valid but names ${claims.reference}, not ${client.ref}` });
      continue;
    }
    log(`verified ${image}: keyless signature by ${policy.identity} (issuer ${policy.issuer}), logged in Rekor (${ref}, ${layers.length} signature(s) checked)`);
    return { ref, signatureDigest, checked: layers.length, reference: claims.reference };
  }
  const worst = ORDER.map((r) => failures.find((f) => f.reason === r)).find((f) => f) ?? { reason: 'bad-signature' as const, detail: 'no signature layer\'s payload matches its digest' };
  throw new SignatureVerificationError(worst.reason, `signature verification failed for ${image}: ${WORDS[worst.reason]}: ${worst.detail} (${layers.length} signature(s) at ${ref} checked)`);
}
