// Local stand-ins for what keyless signing talks to, since the public
// Sigstore services are out of reach here. One HTTP server on loopback:
//
//   /runner/token     the runner's OIDC token API (ACTIONS_ID_TOKEN_REQUEST_URL):
//                     GET with the request token as bearer and ?audience=…,
//                     answers {"value": <JWT>} signed by the test issuer
//   /fulcio           Fulcio's v2 API: POST /api/v2/signingCert checks the
//                     token (signature, issuer, audience "sigstore", expiry) and
//                     the proof of possession (the token's `sub` signed with the
//                     presented key), then issues a certificate for that key
//                     from a test CA (root → intermediate, made by openssl) with
//                     the SAN and OIDC-issuer extensions Fulcio writes for a
//                     GitHub Actions token; GET /api/v2/trustBundle lists the chain
//   /rekor            Rekor's v1 API: POST /api/v1/log/entries takes a
//                     hashedrekord whose certificate the test Fulcio issued and
//                     returns the entry with a signed entry timestamp (SET)
//                     made with a test log key (the signature over the hash is
//                     not checked: Node cannot verify ECDSA over a given digest)
//
// trustedRootFile() writes a Sigstore trusted root (the test CA and the test
// log key) for `cosign verify --trusted-root`. No certificate transparency
// log: the certificates carry no SCT, so cosign needs --insecure-ignore-sct.
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';
export const REQUEST_TOKEN = 'runner-request-token-0d1f9a';

export interface TokenRequest {
  authorization?: string;
  audience?: string;
}

export interface SigstoreStandIns {
  url: string;
  fulcioUrl: string;
  rekorUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_URL (already has a query, as the runner's does). */
  tokenUrl: string;
  /** The identity the certificates name: https://github.com/<job_workflow_ref>. */
  identity: string;
  /** Root CA PEM. */
  rootPem: string;
  /** Intermediate CA PEM (what issues the leaves). */
  intermediatePem: string;
  rekorPublicKey: KeyObject;
  /** Requests the token endpoint got. */
  tokenRequests: TokenRequest[];
  /** Certificates Fulcio issued (PEM). */
  issued: string[];
  /** Entries Rekor took (the proposed entry JSON). */
  entries: unknown[];
  /** Sets what the next token requests answer (an HTTP status), e.g. 403; undefined to answer normally. */
  failTokenWith(status: number | undefined): void;
  trustedRootFile(file: string): string;
  /** An OIDC token of the test issuer, as the runner would hand it out. */
  idToken(audience?: string): string;
  close(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Canonical JSON (RFC 8785 for what Rekor entries hold: objects, strings, integers). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function body(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A root and an intermediate CA (EC P-256), as files in `dir`. */
async function makeCa(dir: string): Promise<void> {
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await openssl(['genpkey', ...ec, '-out', 'root.key'], dir);
  await openssl(['req', '-x509', '-new', '-key', 'root.key', '-subj', '/O=asm-wasm-test/CN=sigstore-test-root', '-days', '2', '-out', 'root.pem', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['genpkey', ...ec, '-out', 'intermediate.key'], dir);
  await openssl(['req', '-new', '-key', 'intermediate.key', '-subj', '/O=asm-wasm-test/CN=sigstore-test-intermediate', '-out', 'intermediate.csr'], dir);
  fs.writeFileSync(path.join(dir, 'intermediate.ext'), 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nextendedKeyUsage=codeSigning\n');
  await openssl(['x509', '-req', '-in', 'intermediate.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '2', '-extfile', 'intermediate.ext', '-out', 'intermediate.pem'], dir);
}

/** A leaf certificate for `publicKeyPem`, issued by the intermediate, the way Fulcio issues one for a GitHub Actions token. */
async function issueLeaf(dir: string, publicKeyPem: string, identity: string, issuer: string): Promise<string> {
  const id = randomBytes(8).toString('hex');
  const pub = path.join(dir, `leaf-${id}.pub`);
  const ext = path.join(dir, `leaf-${id}.ext`);
  const out = path.join(dir, `leaf-${id}.pem`);
  fs.writeFileSync(pub, publicKeyPem);
  fs.writeFileSync(
    ext,
    [
      `subjectAltName=critical,URI:${identity}`,
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=codeSigning',
      `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(issuer).toString('hex')}`,
      `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`,
      '',
    ].join('\n'),
  );
  await openssl(['x509', '-new', '-subj', '/', '-force_pubkey', pub, '-CA', 'intermediate.pem', '-CAkey', 'intermediate.key', '-days', '1', '-extfile', ext, '-out', out], dir);
  return fs.readFileSync(out, 'utf8');
}

export interface StartOptions {
  /** job_workflow_ref of the tokens (the certificate identity is https://github.com/ + it). */
  jobWorkflowRef?: string;
}

export async function startSigstore(options: StartOptions = {}): Promise<SigstoreStandIns> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sigstore-standins-'));
  await makeCa(dir);
  const rootPem = fs.readFileSync(path.join(dir, 'root.pem'), 'utf8');
  const intermediatePem = fs.readFileSync(path.join(dir, 'intermediate.pem'), 'utf8');
  const oidcKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rekorKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rekorDer = rekorKey.publicKey.export({ format: 'der', type: 'spki' });
  const logId = createHash('sha256').update(rekorDer).digest('hex');
  const jobWorkflowRef = options.jobWorkflowRef ?? 'example-org/header-authorization/.github/workflows/release.yml@refs/heads/main';
  const identity = `https://github.com/${jobWorkflowRef}`;
  const tokenRequests: TokenRequest[] = [];
  const issued: string[] = [];
  const entries: unknown[] = [];
  let tokenFailure: number | undefined;
  let logIndex = 0;

  const jwt = (audience: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT' }));
    const claims = b64url(
      JSON.stringify({ iss: TEST_OIDC_ISSUER, aud: audience, sub: `repo:example-org/header-authorization:ref:refs/heads/main`, job_workflow_ref: jobWorkflowRef, iat: now, nbf: now, exp: now + 300 }),
    );
    const sig = cryptoSign('sha256', Buffer.from(`${header}.${claims}`), { key: oidcKey.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${header}.${claims}.${b64url(sig)}`;
  };

  /** The claims of a token this issuer signed, or a reason it is refused. */
  const checkToken = (token: string): { claims: Record<string, unknown> } | { error: string } => {
    const [h, c, s] = token.split('.');
    if (!h || !c || !s) return { error: 'not a JWT' };
    if (!cryptoVerify('sha256', Buffer.from(`${h}.${c}`), { key: oidcKey.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) return { error: 'token signature invalid' };
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (claims.iss !== TEST_OIDC_ISSUER) return { error: 'unknown issuer' };
    if (claims.aud !== 'sigstore') return { error: `audience ${String(claims.aud)} is not sigstore` };
    if (typeof claims.exp !== 'number' || claims.exp < Date.now() / 1000) return { error: 'token expired' };
    return { claims };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/runner/token') {
      tokenRequests.push({ authorization: req.headers.authorization, audience: url.searchParams.get('audience') ?? undefined });
      if (tokenFailure) return send(res, tokenFailure, { message: 'refused by the test' });
      if (req.headers.authorization !== `Bearer ${REQUEST_TOKEN}`) return send(res, 401, { message: 'bad request token' });
      return send(res, 200, { count: 1, value: jwt(url.searchParams.get('audience') ?? 'https://github.com/example-org') });
    }
    if (req.method === 'POST' && url.pathname === '/fulcio/api/v2/signingCert') {
      const request = JSON.parse(await body(req)) as {
        credentials?: { oidcIdentityToken?: string };
        publicKeyRequest?: { publicKey?: { content?: string }; proofOfPossession?: string };
      };
      // The token in the body (sigstore-js) or as bearer (sigstore-go, what cosign uses), as Fulcio takes both.
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const checked = checkToken(request.credentials?.oidcIdentityToken ?? bearer ?? '');
      if ('error' in checked) return send(res, 401, { code: 16, message: checked.error });
      const pem = request.publicKeyRequest?.publicKey?.content ?? '';
      let key: KeyObject;
      try {
        key = createPublicKey(pem);
      } catch {
        return send(res, 400, { code: 3, message: 'public key unreadable' });
      }
      const pop = Buffer.from(request.publicKeyRequest?.proofOfPossession ?? '', 'base64');
      if (!cryptoVerify('sha256', Buffer.from(String(checked.claims.sub)), { key, dsaEncoding: 'der' }, pop)) {
        return send(res, 400, { code: 3, message: 'proof of possession does not verify' });
      }
      const leaf = await issueLeaf(dir, pem, `https://github.com/${String(checked.claims.job_workflow_ref)}`, String(checked.claims.iss));
      issued.push(leaf);
      return send(res, 200, { signedCertificateEmbeddedSct: { chain: { certificates: [leaf, intermediatePem, rootPem] } } });
    }
    if (req.method === 'GET' && url.pathname === '/fulcio/api/v2/trustBundle') {
      return send(res, 200, { chains: [{ certificates: [intermediatePem, rootPem] }] });
    }
    if (req.method === 'POST' && url.pathname === '/rekor/api/v1/log/entries') {
      const entry = JSON.parse(await body(req)) as {
        apiVersion?: string;
        kind?: string;
        spec?: { data?: { hash?: { algorithm?: string; value?: string } }; signature?: { content?: string; publicKey?: { content?: string } } };
      };
      if (entry.kind !== 'hashedrekord' || entry.apiVersion !== '0.0.1') return send(res, 400, { code: 400, message: `unsupported entry ${entry.kind}/${entry.apiVersion}` });
      const certPem = Buffer.from(entry.spec?.signature?.publicKey?.content ?? '', 'base64').toString('utf8');
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(certPem);
      } catch {
        return send(res, 400, { code: 400, message: 'publicKey is not a certificate' });
      }
      const hash = entry.spec?.data?.hash;
      if (hash?.algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(hash.value ?? '')) return send(res, 400, { code: 400, message: 'bad hash' });
      if (!entry.spec?.signature?.content) return send(res, 400, { code: 400, message: 'no signature' });
      // Node cannot verify ECDSA over a given digest, so the signature itself is not
      // checked here; cosign checks it against the payload and the body when it verifies.
      if (!issued.some((p) => new X509Certificate(p).fingerprint256 === cert.fingerprint256)) return send(res, 400, { code: 400, message: 'certificate not issued by the test Fulcio' });
      entries.push(entry);
      const canonical = Buffer.from(canonicalJson(entry));
      const payload = { body: canonical.toString('base64'), integratedTime: Math.floor(Date.now() / 1000), logID: logId, logIndex: logIndex++ };
      const set = cryptoSign('sha256', Buffer.from(canonicalJson(payload)), { key: rekorKey.privateKey, dsaEncoding: 'der' });
      const uuid = createHash('sha256').update(Buffer.concat([Buffer.from([0]), canonical])).digest('hex');
      return send(res, 201, { [uuid]: { ...payload, verification: { signedEntryTimestamp: set.toString('base64') } } }, { location: `/api/v1/log/entries/${uuid}` });
    }
    send(res, 404, { message: `no route ${req.method} ${url.pathname}` });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    fulcioUrl: `${url}/fulcio`,
    rekorUrl: `${url}/rekor`,
    tokenUrl: `${url}/runner/token?api-version=2.0`,
    identity,
    rootPem,
    intermediatePem,
    rekorPublicKey: rekorKey.publicKey,
    tokenRequests,
    issued,
    entries,
    idToken: (audience = 'sigstore') => jwt(audience),
    failTokenWith(status) {
      tokenFailure = status;
    },
    trustedRootFile(file) {
      const der = (pem: string): string => new X509Certificate(pem).raw.toString('base64');
      const validFor = { start: '2020-01-01T00:00:00Z' };
      const root = {
        mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
        tlogs: [
          {
            baseUrl: `${url}/rekor`,
            hashAlgorithm: 'SHA2_256',
            publicKey: { rawBytes: rekorDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
            logId: { keyId: Buffer.from(logId, 'hex').toString('base64') },
          },
        ],
        certificateAuthorities: [
          {
            subject: { organization: 'asm-wasm-test', commonName: 'sigstore-test-intermediate' },
            uri: `${url}/fulcio`,
            certChain: { certificates: [{ rawBytes: der(intermediatePem) }, { rawBytes: der(rootPem) }] },
            validFor,
          },
        ],
        ctlogs: [],
        timestampAuthorities: [],
      };
      fs.writeFileSync(file, JSON.stringify(root, null, 2));
      return file;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
