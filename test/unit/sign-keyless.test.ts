// Keyless signing's own logic (src/sign/keyless.ts): the runner's OIDC token
// request against a local HTTP server speaking the runner's token API, the
// missing-permission error, the service URLs, cosign's bundle annotation
// from a Rekor entry, and reading the identity out of Fulcio-style
// certificates (recorded here, made by openssl with Fulcio's extensions).
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  BUNDLE_ANNOTATION,
  CERTIFICATE_ANNOTATION,
  CHAIN_ANNOTATION,
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  KeylessSigner,
  certificateIdentity,
  keylessAnnotations,
  oidcRequestFromEnv,
  rekorBundle,
  requestOidcToken,
} from '../../src/sign/keyless.js';
import { SIGNATURE_ANNOTATION } from '../../src/sign/payload.js';
import { parseTrustedRoot } from '../../src/sign/verify-keyless.js';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIn0.c2lnbmF0dXJl';
const REQUEST_TOKEN = 'request-token-7f3a';

/** SAN URI, 1.3.6.1.4.1.57264.1.1 = https://old.test (raw), 1.3.6.1.4.1.57264.1.8 = https://issuer.test (UTF8String). */
const CERT_BOTH = `-----BEGIN CERTIFICATE-----
MIICBzCCAa2gAwIBAgIUNtmerEYcmIKaoR3PXCtAFmUllqkwCgYIKoZIzj0EAwIw
HjENMAsGA1UECgwEdGVzdDENMAsGA1UEAwwEcm9vdDAeFw0yNjEyMDIwMDUzNDFa
Fw0zNjExMjkwMDUzNDFaMAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ/Bih6
SGM7RdxWXcy2CpSxfTMpR9oPRd+SpM83XwpfbQLIjR+h413fSm7InmaL94QFHDeC
9u3/ktb5F5Udx7OGo4HmMIHjMEwGA1UdEQEB/wRCMECGPmh0dHBzOi8vZ2l0aHVi
LmNvbS9vL3IvLmdpdGh1Yi93b3JrZmxvd3MveC55bWxAcmVmcy9oZWFkcy9tYWlu
MA4GA1UdDwEB/wQEAwIHgDAeBgorBgEEAYO/MAEBBBBodHRwczovL29sZC50ZXN0
MCMGCisGAQQBg78wAQgEFQwTaHR0cHM6Ly9pc3N1ZXIudGVzdDAdBgNVHQ4EFgQU
ciUQxcy18UlDFR8hM7DCqg+iU7MwHwYDVR0jBBgwFoAUEU7RVSNPhc2N/EwQEVRE
tSIrgv4wCgYIKoZIzj0EAwIDSAAwRQIgOkVuNwnbd2GKLYmMV7EMdLc1S2zwt+6r
NHQdcRedNjACIQDhBqa7NGrSSfoPzu7qNXQHVND5XiOxac6pLd7MGCzojw==
-----END CERTIFICATE-----
`;

/** SAN email, only the older raw 1.3.6.1.4.1.57264.1.1 = https://accounts.example.org. */
const CERT_OLD = `-----BEGIN CERTIFICATE-----
MIIBwjCCAWmgAwIBAgIUb7vLWK+4OfoE+B9YuF3cq3ABfZEwCgYIKoZIzj0EAwIw
HjENMAsGA1UECgwEdGVzdDENMAsGA1UEAwwEcm9vdDAeFw0yNjEyMDIwMDUzMzla
Fw0zNjExMjkwMDUzMzlaMAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ/Bih6
SGM7RdxWXcy2CpSxfTMpR9oPRd+SpM83XwpfbQLIjR+h413fSm7InmaL94QFHDeC
9u3/ktb5F5Udx7OGo4GiMIGfMCEGA1UdEQEB/wQXMBWBE3JlbGVhc2VAZXhhbXBs
ZS5vcmcwDgYDVR0PAQH/BAQDAgeAMCoGCisGAQQBg78wAQEEHGh0dHBzOi8vYWNj
b3VudHMuZXhhbXBsZS5vcmcwHQYDVR0OBBYEFHIlEMXMtfFJQxUfITOwwqoPolOz
MB8GA1UdIwQYMBaAFBFO0VUjT4XNjfxMEBFURLUiK4L+MAoGCCqGSM49BAMCA0cA
MEQCIHVi0W6sBtRXzC1v0Yrhy6V/d1bk1uUZ3l6KGVypdnf+AiA4wkn9kPlCk0FC
s3IXkTchIRh++ESoA1lz0cW0Hwc2Rg==
-----END CERTIFICATE-----
`;

describe('the runner\'s OIDC token', () => {
  let server: http.Server;
  let base: string;
  const seen: Array<{ path: string; authorization?: string }> = [];
  /** What the server answers next: status and body. */
  let answer: { status: number; body: string } = { status: 200, body: JSON.stringify({ count: 1, value: JWT }) };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('asks with the request token as bearer and audience sigstore added to the runner\'s query, and masks both tokens', async () => {
    answer = { status: 200, body: JSON.stringify({ count: 1, value: JWT }) };
    seen.length = 0;
    const masked: string[] = [];
    const token = await requestOidcToken({ url: `${base}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0`, token: REQUEST_TOKEN }, 'sigstore', (s) => masked.push(s));
    expect(token).toBe(JWT);
    expect(seen).toEqual([{ path: '/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0&audience=sigstore', authorization: `Bearer ${REQUEST_TOKEN}` }]);
    expect(masked).toEqual([REQUEST_TOKEN, JWT]);
  });

  it('says to grant id-token: write when the runner refuses, and names other failures', async () => {
    const ask = () => requestOidcToken({ url: `${base}/token?api-version=2.0`, token: REQUEST_TOKEN }, 'sigstore', () => {});
    answer = { status: 403, body: '{"message":"no"}' };
    await expect(ask()).rejects.toThrow(`GitHub's OIDC token request to ${base} answered 403: does the job have \`permissions: id-token: write\`?`);
    answer = { status: 500, body: 'oops' };
    await expect(ask()).rejects.toThrow(new RegExp(`^GitHub's OIDC token request to ${base} answered 500$`));
    answer = { status: 200, body: '<html>' };
    await expect(ask()).rejects.toThrow('answered something that is not JSON');
    answer = { status: 200, body: '{"count":0}' };
    await expect(ask()).rejects.toThrow('answered no token (no "value" holding a JWT)');
    answer = { status: 200, body: '{"value":"not-a-jwt"}' };
    await expect(ask()).rejects.toBeInstanceOf(UserError);
    await expect(requestOidcToken({ url: 'http://127.0.0.1:9/token', token: REQUEST_TOKEN }, 'sigstore', () => {})).rejects.toThrow(/^could not request GitHub's OIDC token from http:\/\/127\.0\.0\.1:9: /);
  });
});

describe('keyless without id-token: write', () => {
  const expected =
    'input `sign: keyless` needs GitHub\'s OIDC token, but the job cannot request one (ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set): grant the job `permissions: id-token: write` (and keep `contents: read`), or sign with a key (sign: true, sign-key); nothing was pushed';

  it('fails at once, in one line, when either variable is missing', () => {
    for (const env of [{}, { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://runner/token' }, { ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'x' }, { ACTIONS_ID_TOKEN_REQUEST_URL: ' ', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'x' }]) {
      expect(() => oidcRequestFromEnv(env)).toThrow(expected);
      expect(() => new KeylessSigner({}, env)).toThrow(UserError);
    }
    expect(expected).not.toContain('\n');
  });

  it('takes the endpoint from the environment, masks the request token, and defaults to the public Sigstore', () => {
    const masked: string[] = [];
    const s = new KeylessSigner({ mask: (v) => masked.push(v) }, { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://runner.example/token?api-version=2.0', ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN });
    expect(masked).toEqual([REQUEST_TOKEN]);
    expect([s.fulcioUrl, s.rekorUrl]).toEqual([DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL]);
    expect([DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL]).toEqual(['https://fulcio.sigstore.dev', 'https://rekor.sigstore.dev']);
  });

  it('points at a private Sigstore from SIGSTORE_FULCIO_URL / SIGSTORE_REKOR_URL or the options, and refuses non-URLs', () => {
    const oidc = { url: 'https://runner.example/token', token: REQUEST_TOKEN };
    const fromEnv = new KeylessSigner({ oidc, mask: () => {} }, { SIGSTORE_FULCIO_URL: 'https://fulcio.internal/', SIGSTORE_REKOR_URL: 'https://rekor.internal' });
    expect([fromEnv.fulcioUrl, fromEnv.rekorUrl]).toEqual(['https://fulcio.internal', 'https://rekor.internal']);
    const fromOptions = new KeylessSigner({ oidc, mask: () => {}, fulcioUrl: 'http://127.0.0.1:5555/fulcio' }, { SIGSTORE_FULCIO_URL: 'https://ignored' });
    expect(fromOptions.fulcioUrl).toBe('http://127.0.0.1:5555/fulcio');
    expect(() => new KeylessSigner({ oidc, mask: () => {} }, { SIGSTORE_REKOR_URL: 'rekor.internal' })).toThrow('SIGSTORE_REKOR_URL must be an http(s) URL, got "rekor.internal"');
  });
});

describe('cosign\'s keyless layer', () => {
  // The parts of a Rekor v1 entry as @sigstore/sign hands them over (bytes, decimal strings).
  const entry = {
    signedEntryTimestamp: Buffer.from('3045022100aa', 'hex'),
    canonicalizedBody: Buffer.from('{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}'),
    integratedTime: '1764633600',
    logIndex: '123456789',
    logId: Buffer.from('c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d', 'hex'),
  };

  it('holds the Rekor bundle as cosign\'s RekorBundle JSON: SignedEntryTimestamp and Payload {body, integratedTime, logIndex, logID}', () => {
    const bundle = rekorBundle(entry);
    expect(JSON.stringify(bundle)).toBe(
      '{"SignedEntryTimestamp":"MEUCIQCq","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoiaGFzaGVkcmVrb3JkIiwic3BlYyI6e319","integratedTime":1764633600,"logIndex":123456789,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}',
    );
    expect(() => rekorBundle({ ...entry, logIndex: 'x' })).toThrow(/no usable integratedTime\/logIndex/);
  });

  it('names the annotations as cosign does', () => {
    const annotations = keylessAnnotations({ signature: Buffer.from([1, 2, 3]), certificate: CERT_BOTH, chain: CERT_OLD, bundle: rekorBundle(entry) });
    expect(annotations).toEqual({
      [SIGNATURE_ANNOTATION]: 'AQID',
      [CERTIFICATE_ANNOTATION]: CERT_BOTH,
      [CHAIN_ANNOTATION]: CERT_OLD,
      [BUNDLE_ANNOTATION]: JSON.stringify(rekorBundle(entry)),
    });
    expect(Object.keys(annotations)).toEqual(['dev.cosignproject.cosign/signature', 'dev.sigstore.cosign/certificate', 'dev.sigstore.cosign/chain', 'dev.sigstore.cosign/bundle']);
  });

  it('reads the identity (SAN URI or email) and the OIDC issuer, preferring 1.3.6.1.4.1.57264.1.8 over the older 1.1', () => {
    expect(certificateIdentity(CERT_BOTH)).toEqual({ identity: 'https://github.com/o/r/.github/workflows/x.yml@refs/heads/main', issuer: 'https://issuer.test' });
    expect(certificateIdentity(CERT_OLD)).toEqual({ identity: 'release@example.org', issuer: 'https://accounts.example.org' });
  });
});

describe('the trusted root for keyless verification', () => {
  const logKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  const logId = createHash('sha256').update(logKey).digest();
  const ca = { certChain: { certificates: [{ rawBytes: new X509Certificate(CERT_OLD).raw.toString('base64') }] } };
  const tlog = { publicKey: { rawBytes: logKey.toString('base64') }, logId: { keyId: logId.toString('base64') } };

  it('reads the certificate authorities and the logs, keyed by hex log ID', () => {
    const root = parseTrustedRoot(JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', certificateAuthorities: [ca], tlogs: [tlog], ctlogs: [] }));
    expect(root.authorities).toHaveLength(1);
    expect(root.authorities[0][0].raw.equals(new X509Certificate(CERT_OLD).raw)).toBe(true);
    expect([...root.logs.keys()]).toEqual([logId.toString('hex')]);
  });

  it('refuses what cannot be trusted from', () => {
    expect(() => parseTrustedRoot('not json')).toThrow('the trusted root is not JSON');
    expect(() => parseTrustedRoot(JSON.stringify({ tlogs: [tlog] }))).toThrow('the trusted root lists no certificate authority (certificateAuthorities)');
    expect(() => parseTrustedRoot(JSON.stringify({ certificateAuthorities: [ca] }))).toThrow('the trusted root lists no transparency log (tlogs)');
    expect(() => parseTrustedRoot(JSON.stringify({ certificateAuthorities: [{ certChain: { certificates: [{ rawBytes: 'AAAA' }] } }], tlogs: [tlog] }))).toThrow(/certificate authority whose chain cannot be read/);
  });
});
