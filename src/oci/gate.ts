// The last check before a push counts as done: read the image back by digest
// and take plugin.wasm out of it with the same rules, in the same order, as
// Istio's Wasm image fetcher (PrepareFetch in pkg/wasm/imagefetcher.go):
//   1. a manifest whose mediaType field is Docker schema 2: the LAST layer must
//      be application/vnd.docker.image.rootfs.diff.tar.gzip, and the first tar
//      entry whose base name is plugin.wasm is the module; no fallback;
//   2. otherwise the "compat" variant: the LAST layer must be
//      application/vnd.oci.image.layer.v1.tar+gzip, same tar search;
//   3. otherwise the "oci" variant: EXACTLY two layers, the first one of type
//      application/vnd.module.wasm.content.layer.v1+wasm is the raw module.
// On top of what Istio checks, this gate refuses indexes (Istio would pick a
// platform's child, and the digest we report must be the image itself),
// images using the OCI 1.1 empty descriptor, modules without the wasm magic,
// and modules whose sha256 is not the one that was built.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path/posix';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { UserError } from '../errors.js';
import { MEDIA_TYPES, WASM_FILE_NAME, isWasm, sha256Digest, sha256Hex } from './image.js';

/** Where the gate reads an image from: a registry, a layout directory, memory. */
export interface ImageSource {
  /** A human name for messages ("registry.example/team/plugin", "layout ./out"). */
  readonly name: string;
  /** The manifest's exact bytes, fetched by digest. */
  getManifest(digest: string): Promise<Buffer>;
  /** A blob's exact bytes. */
  getBlob(digest: string): Promise<Buffer>;
  /**
   * The blob as a file, when the source can give one (a layout's blob file,
   * a registry's blob downloaded to a temporary file; `done` removes what was
   * made for it). Layers are then read back as streams, never held whole.
   */
  blobFile?(digest: string): Promise<{ path: string; done(): void }>;
}

export type GateVariant = 'docker' | 'compat' | 'wasm-artifact';

export interface GateResult {
  variant: GateVariant;
  manifestDigest: string;
  /** The module, when the source was read in memory (a source with blobFile is streamed: only hashed). */
  wasm?: Buffer;
  wasmSha256: string;
}

/** What the gate learns of the module in an image: its hash and whether it starts like a module. */
interface Found {
  wasm?: Buffer;
  sha256: string;
  magic: boolean;
}

function found(wasm: Buffer): Found {
  return { wasm, sha256: sha256Hex(wasm), magic: isWasm(wasm) };
}

/** The OCI 1.1 "empty" descriptor ({}), which image-spec 1.0 consumers do not know. */
export const EMPTY_DESCRIPTOR_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
}

interface Manifest {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: unknown[];
}

class GateFailure extends Error {}

// ---------------------------------------------------------------------------
// tar reading, as Go's archive/tar presents entries

export interface TarEntry {
  name: string;
  type: string;
  data: Buffer;
}

function parseOctal(buf: Buffer): number {
  const text = buf.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new GateFailure(`bad number "${text}" in a tar header`);
  return parseInt(text, 8);
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end === -1 ? buf.length : end).toString('utf8');
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) throw new GateFailure('bad PAX record in tar');
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** A header's type flag, after checking its checksum. */
function headerType(header: Buffer): string {
  const stored = parseOctal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  if (sum !== stored) throw new GateFailure('tar header checksum mismatch');
  return String.fromCharCode(header[156] || 0x30);
}

/** An entry's name: ustar prefix joined, then a GNU long name, then a PAX path, as Go reads it. */
function entryName(header: Buffer, longName: string | undefined, pax: Record<string, string>): string {
  let name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 263).toString('latin1');
  if (magic.startsWith('ustar')) {
    const prefix = cString(header.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
  }
  if (longName !== undefined) name = longName;
  if (pax.path !== undefined) name = pax.path;
  return name;
}

/** The entries of a tar archive (PAX and GNU long names merged, as Go does). */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  while (pos + 512 <= archive.length) {
    const header = archive.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const type = headerType(header);
    const size = pax.size !== undefined ? parseInt(pax.size, 10) : parseOctal(header.subarray(124, 136));
    const start = pos + 512;
    const end = start + size;
    if (end > archive.length) throw new GateFailure('tar archive is truncated');
    const data = archive.subarray(start, end);
    pos = start + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      pax = { ...pax, ...parsePax(data) };
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cString(data);
      continue;
    }
    if (type === 'K') continue;
    entries.push({ name: entryName(header, longName, pax), type, data });
    pax = {};
    longName = undefined;
  }
  return entries;
}

/** Go's filepath.Base on a slash path: trailing slashes dropped, "" is ".". */
function goBase(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  if (trimmed === '') return name === '' ? '.' : '/';
  return basename(trimmed);
}

function extractFromTarGz(layer: Buffer): Buffer {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(layer);
  } catch (err) {
    throw new GateFailure(`failed to parse layer as tar.gz: ${(err as Error).message}`);
  }
  // The entry is a view into the archive, not a copy: the module is not held twice.
  for (const entry of readTar(tar)) {
    if (goBase(entry.name) === WASM_FILE_NAME) return entry.data;
  }
  throw new GateFailure(`${WASM_FILE_NAME} not found in the archive`);
}

/** Reads exact byte counts from a stream of chunks, holding only what is not yet taken. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.ended) {
      const next = await this.chunks.next();
      if (next.done) this.ended = true;
      else this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, next.value]) : next.value;
    }
  }

  /** The next n bytes (fewer at the end of the stream). */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Hands the next n bytes to `use` piece by piece; returns how many there were. */
  async each(n: number, use: (piece: Buffer) => void): Promise<number> {
    let left = n;
    while (left > 0) {
      await this.fill(1);
      if (this.buf.length === 0) break;
      const piece = this.buf.subarray(0, Math.min(left, this.buf.length));
      use(piece);
      this.buf = this.buf.subarray(piece.length);
      left -= piece.length;
    }
    return n - left;
  }
}

/**
 * extractFromTarGz over a stream: the first entry whose base name is
 * plugin.wasm, hashed as it is read, as Go's archive/tar reads an archive
 * entry by entry (the same header, PAX and long-name rules as readTar).
 */
async function scanTarGz(file: string): Promise<Found> {
  const chunks = createReadStream(file).pipe(zlib.createGunzip())[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const reader = new ChunkReader(chunks);
  try {
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    for (;;) {
      const header = await reader.take(512);
      if (header.length < 512 || header.every((b) => b === 0)) break;
      const type = headerType(header);
      const size = pax.size !== undefined ? parseInt(pax.size, 10) : parseOctal(header.subarray(124, 136));
      const padding = Math.ceil(size / 512) * 512 - size;
      if (type === 'x' || type === 'L') {
        const data = await reader.take(size);
        if (data.length < size) throw new GateFailure('tar archive is truncated');
        await reader.take(padding);
        if (type === 'x') pax = { ...pax, ...parsePax(data) };
        else longName = cString(data);
        continue;
      }
      const name = type === 'g' || type === 'K' ? undefined : entryName(header, longName, pax);
      if (name !== undefined && goBase(name) === WASM_FILE_NAME) {
        const hash = createHash('sha256');
        let head = Buffer.alloc(0);
        const got = await reader.each(size, (piece) => {
          if (head.length < 8) head = Buffer.concat([head, piece.subarray(0, 8 - head.length)]);
          hash.update(piece);
        });
        if (got < size) throw new GateFailure('tar archive is truncated');
        return { sha256: hash.digest('hex'), magic: isWasm(head) };
      }
      if ((await reader.each(size, () => undefined)) < size) throw new GateFailure('tar archive is truncated');
      await reader.take(padding);
      if (name !== undefined) {
        pax = {};
        longName = undefined;
      }
    }
  } catch (err) {
    if (err instanceof GateFailure) throw err;
    throw new GateFailure(`failed to parse layer as tar.gz: ${(err as Error).message}`);
  } finally {
    await chunks.return?.();
  }
  throw new GateFailure(`${WASM_FILE_NAME} not found in the archive`);
}

// ---------------------------------------------------------------------------

/**
 * go-containerregistry finds a layer's media type by digest: the config's
 * descriptor first, then the first layer with that digest.
 */
function layerMediaType(m: Manifest, layer: Descriptor): string | undefined {
  if (m.config?.digest === layer.digest) return m.config?.mediaType;
  return m.layers?.find((l) => l.digest === layer.digest)?.mediaType;
}

function usableDigest(d: Descriptor): string {
  if (!d.digest || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) throw new GateFailure(`layer has an unusable digest "${d.digest}"`);
  return d.digest;
}

function checkBlob(d: Descriptor, digest: string, size: number): void {
  if (digest !== d.digest) throw new GateFailure(`blob ${d.digest} read back with different content (sha256 ${digest})`);
  if (typeof d.size === 'number' && d.size !== size) throw new GateFailure(`blob ${d.digest} is ${size} bytes, the manifest says ${d.size}`);
}

async function fetchVerified(source: ImageSource, d: Descriptor): Promise<Buffer> {
  const data = await source.getBlob(usableDigest(d));
  checkBlob(d, sha256Digest(data), data.length);
  return data;
}

/**
 * A layer checked against its descriptor, then read by `read`: from a file
 * as a stream when the source gives one, else from memory.
 */
async function readLayer(source: ImageSource, d: Descriptor, read: { file(path: string, sha256: string): Promise<Found>; memory(data: Buffer): Found }): Promise<Found> {
  if (!source.blobFile) return read.memory(await fetchVerified(source, d));
  const blob = await source.blobFile(usableDigest(d));
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(blob.path) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    const sha256 = hash.digest('hex');
    checkBlob(d, `sha256:${sha256}`, size);
    return await read.file(blob.path, sha256);
  } finally {
    blob.done();
  }
}

const tarGzLayer = { file: (path: string) => scanTarGz(path), memory: (data: Buffer) => found(extractFromTarGz(data)) };

async function extractDocker(source: ImageSource, m: Manifest): Promise<Found> {
  const layers = m.layers ?? [];
  if (layers.length === 0) throw new GateFailure('number of layers must be greater than zero');
  const layer = layers[layers.length - 1];
  const mt = layerMediaType(m, layer);
  if (mt !== MEDIA_TYPES.dockerLayerGzip) throw new GateFailure(`invalid media type ${mt} (expect ${MEDIA_TYPES.dockerLayerGzip})`);
  return readLayer(source, layer, tarGzLayer);
}

async function extractCompat(source: ImageSource, m: Manifest): Promise<Found> {
  const layers = m.layers ?? [];
  if (layers.length === 0) throw new GateFailure('number of layers must be greater than zero');
  const layer = layers[layers.length - 1];
  const mt = layerMediaType(m, layer);
  if (mt !== MEDIA_TYPES.ociLayerGzip) throw new GateFailure(`invalid media type ${mt} (expect ${MEDIA_TYPES.ociLayerGzip})`);
  return readLayer(source, layer, tarGzLayer);
}

async function extractArtifact(source: ImageSource, m: Manifest): Promise<Found> {
  const layers = m.layers ?? [];
  if (layers.length !== 2) throw new GateFailure(`number of layers must be 2 but got ${layers.length}`);
  const layer = layers.find((l) => layerMediaType(m, l) === MEDIA_TYPES.wasmLayer);
  if (!layer) throw new GateFailure(`could not find the layer of type ${MEDIA_TYPES.wasmLayer}`);
  // The layer is the module: its digest is the module's sha256, and its first bytes the magic.
  return readLayer(source, layer, {
    file: async (path, sha256) => {
      const head = Buffer.alloc(8);
      const fh = await open(path, 'r');
      try {
        const { bytesRead } = await fh.read(head, 0, 8, 0);
        return { sha256, magic: isWasm(head.subarray(0, bytesRead)) };
      } finally {
        await fh.close();
      }
    },
    memory: found,
  });
}

function messageOfFailure(err: unknown): string {
  if (err instanceof GateFailure) return err.message;
  throw err;
}

function isEmptyDescriptor(d: Descriptor | undefined): boolean {
  return !!d && (d.mediaType === MEDIA_TYPES.ociEmpty || d.digest === EMPTY_DESCRIPTOR_DIGEST);
}

/**
 * Reads the image `digest` from `source` as Istio would and checks that it
 * carries exactly the module whose hex sha256 is `expectedWasmSha256`.
 * Throws a UserError naming what is wrong.
 */
export async function gate(source: ImageSource, digest: string, expectedWasmSha256: string): Promise<GateResult> {
  const expected = expectedWasmSha256.replace(/^sha256:/, '').toLowerCase();
  const fail = (why: string): never => {
    throw new UserError(`the image ${source.name}@${digest} would not load in Istio: ${why}`);
  };
  let raw: Buffer;
  try {
    raw = await source.getManifest(digest);
  } catch (err) {
    if (err instanceof UserError) throw err;
    return fail(`its manifest could not be read back (${(err as Error).message})`);
  }
  if (sha256Digest(raw) !== digest) return fail(`the manifest read back has digest ${sha256Digest(raw)}`);
  let m: Manifest;
  try {
    m = JSON.parse(raw.toString('utf8')) as Manifest;
  } catch {
    return fail('its manifest is not JSON');
  }
  if (typeof m !== 'object' || m === null) return fail('its manifest is not a JSON object');
  if (m.mediaType === MEDIA_TYPES.ociIndex || m.mediaType === MEDIA_TYPES.dockerManifestList || Array.isArray(m.manifests)) {
    return fail('it is an image index, not an image manifest (push the plugin image itself)');
  }
  if (m.schemaVersion !== 2) return fail(`schemaVersion is ${String(m.schemaVersion)}, expected 2`);
  if (isEmptyDescriptor(m.config) || (m.layers ?? []).some(isEmptyDescriptor)) {
    return fail('it uses the OCI 1.1 empty descriptor, which image-spec 1.0 readers do not accept');
  }

  let wasm: Found | undefined;
  let variant: GateVariant | undefined;
  try {
    if (m.mediaType === MEDIA_TYPES.dockerManifest) {
      try {
        wasm = await extractDocker(source, m);
        variant = 'docker';
      } catch (err) {
        return fail(`could not extract the Wasm file as a Docker image: ${messageOfFailure(err)}`);
      }
    } else {
      let errCompat = '';
      let errArtifact = '';
      try {
        wasm = await extractCompat(source, m);
        variant = 'compat';
      } catch (err) {
        errCompat = messageOfFailure(err);
      }
      if (!wasm) {
        try {
          wasm = await extractArtifact(source, m);
          variant = 'wasm-artifact';
        } catch (err) {
          errArtifact = messageOfFailure(err);
        }
      }
      if (!wasm) return fail(`not a compat image (${errCompat}) and not a Wasm artifact (${errArtifact})`);
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    return fail(`reading it back failed (${(err as Error).message})`);
  }
  if (!wasm.magic) return fail(`its ${WASM_FILE_NAME} is not a WebAssembly module (no "\\0asm" magic)`);
  const got = wasm.sha256;
  if (got !== expected) return fail(`its ${WASM_FILE_NAME} has sha256 ${got}, but the built plugin has ${expected}`);
  return { variant: variant!, manifestDigest: digest, wasm: wasm.wasm, wasmSha256: got };
}

// ---------------------------------------------------------------------------
// sources

/** A source over in-memory maps (tests, or an image just built). */
export function memorySource(name: string, manifests: Map<string, Buffer>, blobs: Map<string, Buffer>): ImageSource {
  return {
    name,
    async getManifest(digest) {
      const m = manifests.get(digest) ?? blobs.get(digest);
      if (!m) throw new Error(`manifest ${digest} not found`);
      return m;
    },
    async getBlob(digest) {
      const b = blobs.get(digest);
      if (!b) throw new Error(`blob ${digest} not found`);
      return b;
    },
  };
}

/** A source over an OCI image layout directory. */
export function layoutSource(dir: string): ImageSource {
  const blobPath = (digest: string): string => {
    const m = /^(sha256):([0-9a-f]{64})$/.exec(digest);
    if (!m) throw new Error(`unsupported digest ${digest}`);
    return join(dir, 'blobs', m[1], m[2]);
  };
  return {
    name: `layout ${dir}`,
    getManifest: (digest) => readFile(blobPath(digest)),
    getBlob: (digest) => readFile(blobPath(digest)),
    blobFile: async (digest) => ({ path: blobPath(digest), done: () => undefined }),
  };
}
