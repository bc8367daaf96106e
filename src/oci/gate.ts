// The last check before a push counts as done: read the image back by digest
// and take plugin.wasm out of it with the same rules, in the same order, as
// Istio's Wasm image fetcher (PrepareFetch in pkg/wasm/imagefetcher.go;
// the tar reading is in tar.ts):
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
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { MEDIA_TYPES, WASM_FILE_NAME, isWasm, sha256Digest, sha256Hex } from './image.js';
import { extractFromTarGz, scanTarGz, TarError } from './tar.js';

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
  if (err instanceof GateFailure || err instanceof TarError) return err.message;
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
