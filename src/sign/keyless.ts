// Keyless signing (`sign: keyless`): GitHub's OIDC token → a Fulcio
// certificate for an ephemeral key → a Rekor entry, done by @sigstore/sign,
// and stored the way `cosign sign` stores a keyless signature in its classic
// format: the simple-signing layer of the `sha256-<hex>.sig` image (see
// payload.ts) carries, besides `dev.cosignproject.cosign/signature`,
//   dev.sigstore.cosign/certificate  the leaf certificate, PEM
//   dev.sigstore.cosign/chain        the issuing chain (intermediates, root), PEM, concatenated
//   dev.sigstore.cosign/bundle       the Rekor entry's signed entry timestamp as JSON:
//     {"SignedEntryTimestamp":<base64>,
//      "Payload":{"body":<base64 canonical entry>,"integratedTime":<s>,"logIndex":<n>,"logID":<hex>}}
// (cosign's static.Option and bundle.RekorBundle). The Rekor entry is a
// hashedrekord of the payload's sha256, the signature and the certificate,
// the same entry cosign makes.
//
// Where the services are: the public instances unless the environment names
// others (SIGSTORE_FULCIO_URL, SIGSTORE_REKOR_URL), for a private Sigstore
// deployment or the tests' stand-ins.
import { X509Certificate, verify as cryptoVerify } from 'node:crypto';
import { FulcioSigner, MessageSignatureBundleBuilder, RekorWitness, type IdentityProvider } from '@sigstore/sign';
import { UserError } from '../errors.js';
import { maskSecret } from '../github.js';
import { SIGNATURE_ANNOTATION } from './payload.js';

export const DEFAULT_FULCIO_URL = 'https://fulcio.sigstore.dev';
export const DEFAULT_REKOR_URL = 'https://rekor.sigstore.dev';
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
/** The audience Fulcio accepts tokens for. */
export const SIGSTORE_AUDIENCE = 'sigstore';
/** The OIDC issuer of GitHub Actions' tokens, as Fulcio writes it into the certificate. */
export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';

const MISSING_PERMISSION =
  'input `sign: keyless` needs GitHub\'s OIDC token, but the job cannot request one (ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set): ' +
  'grant the job `permissions: id-token: write` (and keep `contents: read`), or sign with a key (sign: true, sign-key); nothing was pushed';

/** cosign's bundle.RekorBundle, as JSON. */
export interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/** What a keyless signing yields: everything the signature layer's annotations hold. */
export interface KeylessSignature {
  /** ASN.1 DER ECDSA signature over the payload. */
  signature: Buffer;
  /** The leaf certificate, PEM. */
  certificate: string;
  /** The chain that issued it (intermediates, then root), PEM blocks concatenated. */
  chain: string;
  bundle: RekorBundle;
}

export interface OidcRequest {
  /** ACTIONS_ID_TOKEN_REQUEST_URL */
  url: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN */
  token: string;
}

/** The runner's token request endpoint, or a UserError that says to grant id-token: write. */
export function oidcRequestFromEnv(env: NodeJS.ProcessEnv = process.env): OidcRequest {
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL?.trim();
  const token = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN?.trim();
  if (!url || !token) throw new UserError(MISSING_PERMISSION);
  return { url, token };
}

/**
 * Asks the runner for an OIDC token for `audience` (GET <url>&audience=…
 * with the request token as bearer; the answer is {"value": <JWT>}). The
 * token is masked before it is returned.
 */
export async function requestOidcToken(request: OidcRequest, audience = SIGSTORE_AUDIENCE, mask: (s: string) => void = maskSecret): Promise<string> {
  mask(request.token);
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new UserError(`ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: ${request.url}`);
  }
  url.searchParams.set('audience', audience);
  let res: Response;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${request.token}`, Accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new UserError(`could not request GitHub's OIDC token from ${url.origin}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    throw new UserError(
      `GitHub's OIDC token request to ${url.origin} answered ${res.status}${res.status === 401 || res.status === 403 ? ': does the job have `permissions: id-token: write`?' : ''}`,
    );
  }
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    throw new UserError(`GitHub's OIDC token request to ${url.origin} answered something that is not JSON`);
  }
  if (typeof value !== 'string' || value.split('.').length !== 3) throw new UserError(`GitHub's OIDC token request to ${url.origin} answered no token (no "value" holding a JWT)`);
  mask(value);
  return value;
}

export interface KeylessOptions {
  fulcioUrl?: string;
  rekorUrl?: string;
  /** Default: the runner's token endpoint from the environment. */
  oidc?: OidcRequest;
  /** Default: maskSecret (the runner's ::add-mask::). */
  mask?: (s: string) => void;
  /** Per request. Default 30 s. */
  timeoutMs?: number;
}

/**
 * How the push stage signs keyless. Made before anything is pushed, so a job
 * without `id-token: write` fails at once; the token itself is requested at
 * signing time (it lives minutes).
 */
export class KeylessSigner {
  readonly fulcioUrl: string;
  readonly rekorUrl: string;
  private readonly oidc: OidcRequest;
  private readonly mask: (s: string) => void;
  private readonly timeoutMs: number;

  constructor(options: KeylessOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    this.oidc = options.oidc ?? oidcRequestFromEnv(env);
    this.mask = options.mask ?? maskSecret;
    this.mask(this.oidc.token);
    this.fulcioUrl = baseUrl(options.fulcioUrl ?? env.SIGSTORE_FULCIO_URL, DEFAULT_FULCIO_URL, 'SIGSTORE_FULCIO_URL');
    this.rekorUrl = baseUrl(options.rekorUrl ?? env.SIGSTORE_REKOR_URL, DEFAULT_REKOR_URL, 'SIGSTORE_REKOR_URL');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Signs `payload`: token, certificate, signature, Rekor entry, chain. */
  async sign(payload: Buffer): Promise<KeylessSignature> {
    const identityProvider: IdentityProvider = { getToken: () => requestOidcToken(this.oidc, SIGSTORE_AUDIENCE, this.mask) };
    const retry = { retries: 2 };
    const builder = new MessageSignatureBundleBuilder({
      signer: new FulcioSigner({ identityProvider, fulcioBaseURL: this.fulcioUrl, timeout: this.timeoutMs, retry }),
      witnesses: [new RekorWitness({ rekorBaseURL: this.rekorUrl, timeout: this.timeoutMs, retry })],
    });
    let bundle: Awaited<ReturnType<MessageSignatureBundleBuilder['create']>>;
    try {
      bundle = await builder.create({ data: payload });
    } catch (err) {
      // Our own errors (the token request) come back wrapped by @sigstore/sign: say them as they are.
      for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof UserError) throw e;
      throw new UserError(`keyless signing failed (Fulcio ${this.fulcioUrl}, Rekor ${this.rekorUrl}): ${describe(err)}`);
    }
    const signature = Buffer.from(bundle.content.messageSignature.signature);
    const material = bundle.verificationMaterial.content;
    const leafDer = material.$case === 'x509CertificateChain' ? material.x509CertificateChain.certificates[0]?.rawBytes : material.$case === 'certificate' ? material.certificate.rawBytes : undefined;
    if (!leafDer) throw new UserError(`keyless signing: Fulcio at ${this.fulcioUrl} returned no certificate`);
    const leaf = new X509Certificate(Buffer.from(leafDer));
    if (!cryptoVerify('sha256', payload, { key: leaf.publicKey, dsaEncoding: 'der' }, signature)) {
      throw new UserError(`keyless signing: the signature does not verify with the certificate Fulcio at ${this.fulcioUrl} issued`);
    }
    const entry = bundle.verificationMaterial.tlogEntries[0];
    const set = entry?.inclusionPromise?.signedEntryTimestamp;
    if (!entry || !set || set.length === 0) throw new UserError(`keyless signing: Rekor at ${this.rekorUrl} returned no signed entry timestamp, which cosign needs to verify offline`);
    const chain = await this.issuingChain(leaf);
    return {
      signature,
      certificate: leaf.toString(),
      chain,
      bundle: rekorBundle({
        signedEntryTimestamp: Buffer.from(set),
        canonicalizedBody: Buffer.from(entry.canonicalizedBody),
        integratedTime: entry.integratedTime,
        logIndex: entry.logIndex,
        logId: Buffer.from(entry.logId?.keyId ?? Buffer.alloc(0)),
      }),
    };
  }

  /**
   * The chain above the leaf, from Fulcio's trust bundle (@sigstore/sign
   * keeps only the leaf of the signing-certificate answer): the chain whose
   * first certificate issued the leaf and verifies its signature.
   */
  private async issuingChain(leaf: X509Certificate): Promise<string> {
    const url = `${this.fulcioUrl}/api/v2/trustBundle`;
    let chains: Array<{ certificates?: string[] }>;
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) throw new Error(`answered ${res.status}`);
      chains = ((await res.json()) as { chains?: Array<{ certificates?: string[] }> }).chains ?? [];
    } catch (err) {
      throw new UserError(`keyless signing: could not read Fulcio's certificate chain from ${url}: ${(err as Error).message}`);
    }
    for (const c of chains) {
      const pems = (c.certificates ?? []).map((p) => (p.endsWith('\n') ? p : `${p}\n`));
      if (pems.length === 0) continue;
      try {
        const issuer = new X509Certificate(pems[0]);
        if (leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey)) return pems.join('');
      } catch {
        continue;
      }
    }
    throw new UserError(`keyless signing: none of the chains in Fulcio's trust bundle (${url}) issued the signing certificate ${leaf.issuer.replace(/\n/g, ', ')}`);
  }
}

/** cosign's bundle annotation from a Rekor entry's parts. */
export function rekorBundle(entry: { signedEntryTimestamp: Buffer; canonicalizedBody: Buffer; integratedTime: string | number; logIndex: string | number; logId: Buffer }): RekorBundle {
  const integratedTime = Number(entry.integratedTime);
  const logIndex = Number(entry.logIndex);
  if (!Number.isSafeInteger(integratedTime) || !Number.isSafeInteger(logIndex)) throw new UserError(`keyless signing: the Rekor entry has no usable integratedTime/logIndex (${entry.integratedTime}, ${entry.logIndex})`);
  return {
    SignedEntryTimestamp: entry.signedEntryTimestamp.toString('base64'),
    Payload: { body: entry.canonicalizedBody.toString('base64'), integratedTime, logIndex, logID: entry.logId.toString('hex') },
  };
}

/** The annotations of a keyless signature layer, in cosign's names. */
export function keylessAnnotations(s: KeylessSignature): Record<string, string> {
  return {
    [SIGNATURE_ANNOTATION]: s.signature.toString('base64'),
    [CERTIFICATE_ANNOTATION]: s.certificate,
    [CHAIN_ANNOTATION]: s.chain,
    [BUNDLE_ANNOTATION]: JSON.stringify(s.bundle),
  };
}

/** The identity Fulcio bound the certificate to: its SAN (URI or email) and the OIDC issuer extension. */
export function certificateIdentity(pem: string): { identity?: string; issuer?: string } {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName ?? '';
  const identity = /(?:^|, )(?:URI|email):([^,]+)/.exec(san)?.[1];
  return { identity, issuer: oidcIssuer(cert) };
}

/** Fulcio's OIDC issuer extension: 1.3.6.1.4.1.57264.1.8 (a DER UTF8String), else the older 1.3.6.1.4.1.57264.1.1 (raw bytes). */
function oidcIssuer(cert: X509Certificate): string | undefined {
  const der = cert.raw;
  for (const [oid, wrapped] of [
    ['2b0601040183bf300108', true],
    ['2b0601040183bf300101', false],
  ] as const) {
    const oidTlv = Buffer.from(`06${(oid.length / 2).toString(16).padStart(2, '0')}${oid}`, 'hex');
    const at = der.indexOf(oidTlv);
    if (at < 0) continue;
    let i = at + oidTlv.length;
    if (der[i] === 0x01) i += 3; // critical BOOLEAN
    if (der[i] !== 0x04) continue; // OCTET STRING
    const [len, start] = derLength(der, i + 1);
    let value = der.subarray(start, start + len);
    if (wrapped && value[0] === 0x0c) {
      const [l2, s2] = derLength(value, 1);
      value = value.subarray(s2, s2 + l2);
    }
    return value.toString('utf8');
  }
  return undefined;
}

function derLength(buf: Buffer, at: number): [number, number] {
  const first = buf[at];
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let k = 0; k < n; k++) len = len * 256 + buf[at + 1 + k];
  return [len, at + 1 + n];
}

function baseUrl(value: string | undefined, fallback: string, name: string): string {
  const v = value?.trim() || fallback;
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
  } catch {
    throw new UserError(`${name} must be an http(s) URL, got "${v}"`);
  }
  return v.replace(/\/+$/, '');
}

function describe(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const msg = (e as Error).message ?? String(e);
    if (!parts.includes(msg)) parts.push(msg);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}
