// Signing keys: cosign's own encrypted private key (what `cosign
// generate-key-pair` writes), a plain PKCS#8 or SEC 1 EC key, and the public
// key (cosign.pub). Everything is decrypted in memory; nothing is written.
//
// The encrypted format, as sigstore's cryptoutils and securesystemslib's
// `encrypted` package define it: a PEM block "ENCRYPTED SIGSTORE PRIVATE KEY"
// (older cosign: "ENCRYPTED COSIGN PRIVATE KEY") whose body is JSON
//   {"kdf":    {"name":"scrypt","params":{"N":…,"r":…,"p":…},"salt":<base64>},
//    "cipher": {"name":"nacl/secretbox","nonce":<base64, 24 bytes>},
//    "ciphertext": <base64>}
// The box key is scrypt(password, salt, N, r, p, 32 bytes); the plaintext is
// the PKCS#8 DER of the private key. Only the three scrypt parameter sets
// securesystemslib writes are accepted (N = 2^15, 2^16, 2^17 with r 8, p 1),
// as cosign itself does: a key file cannot make us spend unbounded memory.
import { createPrivateKey, createPublicKey, scrypt, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';

/** A key that cannot be used, with a message that says what to fix. */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

const ENCRYPTED_TYPES = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'];
const ALLOWED_SCRYPT = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];

export interface PemBlock {
  type: string;
  body: Buffer;
}

/** The first PEM block of `text`, or undefined when there is none. */
export function pemBlock(text: string): PemBlock | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  const lines = m[2].split(/\r?\n/).filter((l) => l.trim() !== '');
  // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") mean a legacy encrypted block, which we do not read.
  if (lines.some((l) => l.includes(':'))) throw new KeyError(`the PEM block "${m[1]}" has headers (legacy PEM encryption), which is not supported; use cosign's encrypted key or PKCS#8`);
  return { type: m[1], body: Buffer.from(lines.join(''), 'base64') };
}

interface EncryptedKeyFile {
  kdf?: { name?: string; params?: { N?: number; r?: number; p?: number }; salt?: string };
  cipher?: { name?: string; nonce?: string };
  ciphertext?: string;
}

function scryptKey(password: Buffer, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // 128 * N * r bytes, plus headroom: 2^17 * 8 * 128 is 128 MiB.
    scrypt(password, salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 192 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Decrypts the JSON body of an "ENCRYPTED SIGSTORE PRIVATE KEY" block to the PKCS#8 DER it holds. */
export async function decryptSigstoreKey(body: Buffer, password: string): Promise<Buffer> {
  let file: EncryptedKeyFile;
  try {
    file = JSON.parse(body.toString('utf8')) as EncryptedKeyFile;
  } catch {
    throw new KeyError('the encrypted private key is not the JSON cosign writes (kdf, cipher, ciphertext)');
  }
  const { kdf, cipher, ciphertext } = file;
  if (kdf?.name !== 'scrypt') throw new KeyError(`the encrypted private key uses the key derivation "${String(kdf?.name)}"; only scrypt is supported`);
  if (cipher?.name !== 'nacl/secretbox') throw new KeyError(`the encrypted private key uses the cipher "${String(cipher?.name)}"; only nacl/secretbox is supported`);
  const params = kdf.params ?? {};
  const allowed = ALLOWED_SCRYPT.find((a) => a.N === params.N && a.r === params.r && a.p === params.p);
  if (!allowed) throw new KeyError(`the encrypted private key has scrypt parameters ${JSON.stringify(params)}, which cosign does not write`);
  const salt = Buffer.from(kdf.salt ?? '', 'base64');
  const nonce = Buffer.from(cipher.nonce ?? '', 'base64');
  const boxed = Buffer.from(ciphertext ?? '', 'base64');
  if (salt.length === 0 || nonce.length !== nacl.secretbox.nonceLength || boxed.length <= nacl.secretbox.overheadLength) {
    throw new KeyError('the encrypted private key is cut short (salt, 24-byte nonce or ciphertext missing)');
  }
  const key = await scryptKey(Buffer.from(password, 'utf8'), salt, allowed);
  try {
    const opened = nacl.secretbox.open(boxed, nonce, key);
    if (!opened) throw new KeyError('could not decrypt the private key: the password (sign-key-password) is wrong, or the key file is damaged');
    return Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength);
  } finally {
    key.fill(0);
  }
}

function requireP256(key: KeyObject, what: string): KeyObject {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const is = key.asymmetricKeyType === 'ec' ? `an EC key on ${curve}` : `a ${key.asymmetricKeyType} key`;
    throw new KeyError(`${what} is ${is}; only ECDSA P-256 keys (what cosign generate-key-pair makes) are supported`);
  }
  return key;
}

/**
 * The private key in `pem`: cosign's encrypted key (with `password`; cosign
 * allows an empty one), PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
 * Only ECDSA P-256.
 */
export async function parsePrivateKey(pem: string, password = ''): Promise<KeyObject> {
  const block = pemBlock(pem);
  if (!block) throw new KeyError('the signing key is not PEM: give the contents of cosign.key (cosign generate-key-pair) or a PKCS#8 EC P-256 key');
  let der: Buffer;
  let type: 'pkcs8' | 'sec1';
  if (ENCRYPTED_TYPES.includes(block.type)) {
    der = await decryptSigstoreKey(block.body, password);
    type = 'pkcs8';
  } else if (block.type === 'PRIVATE KEY') {
    der = block.body;
    type = 'pkcs8';
  } else if (block.type === 'EC PRIVATE KEY') {
    der = block.body;
    type = 'sec1';
  } else if (block.type === 'ENCRYPTED PRIVATE KEY') {
    throw new KeyError('the signing key is a PKCS#8 key encrypted with a password (ENCRYPTED PRIVATE KEY); give cosign\'s encrypted key (cosign import-key-pair makes one) or an unencrypted PKCS#8 key');
  } else {
    throw new KeyError(`the signing key is a "${block.type}" PEM block; expected ENCRYPTED SIGSTORE PRIVATE KEY (cosign.key), PRIVATE KEY or EC PRIVATE KEY`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type });
  } catch (err) {
    throw new KeyError(`the signing key could not be read as ${type === 'pkcs8' ? 'PKCS#8' : 'SEC 1'}: ${(err as Error).message}`);
  } finally {
    der.fill(0);
  }
  return requireP256(key, 'the signing key');
}

/** The public key in `pem` (cosign.pub: "PUBLIC KEY", SubjectPublicKeyInfo). Only ECDSA P-256. */
export function parsePublicKey(pem: string): KeyObject {
  const block = pemBlock(pem);
  if (!block) throw new KeyError('the verification key is not PEM: give the contents of cosign.pub');
  if (block.type !== 'PUBLIC KEY') throw new KeyError(`the verification key is a "${block.type}" PEM block; expected PUBLIC KEY (cosign.pub)`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.body, format: 'der', type: 'spki' });
  } catch (err) {
    throw new KeyError(`the verification key could not be read: ${(err as Error).message}`);
  }
  return requireP256(key, 'the verification key');
}

/** The public key of a private key, as cosign.pub holds it. */
export function publicKeyPem(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
}
