// Builds the OCI image that carries plugin.wasm, byte for byte reproducibly:
// the same wasm and the same options always give the same manifest digest.
// Nothing here reads the clock or the environment; only buildImageFromFile
// reads the disk (the module, streamed once into the gzip'd layer).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { UserError } from '../errors.js';

/**
 * The three layouts Istio's image fetcher can load:
 * - `compat`: OCI image manifest, one gzip'd tar layer holding plugin.wasm.
 * - `docker`: the same with Docker schema 2 media types.
 * - `wasm-artifact`: Istio's "oci" variant: two layers, the runtime config
 *   and the raw wasm module.
 */
export type ImageFormat = 'compat' | 'docker' | 'wasm-artifact';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['compat', 'docker', 'wasm-artifact'];

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  wasmConfig: 'application/vnd.module.wasm.config.v1+json',
  wasmLayer: 'application/vnd.module.wasm.content.layer.v1+wasm',
} as const;

/** The name Istio looks for inside a compat layer. */
export const WASM_FILE_NAME = 'plugin.wasm';

/** A content-addressed blob: a config or a layer. */
export interface Blob {
  mediaType: string;
  /** "sha256:<hex>" of `data`. */
  digest: string;
  size: number;
  data: Buffer;
  annotations?: Record<string, string>;
}

export interface BuildImageOptions {
  wasm: Buffer;
  format?: ImageFormat;
  /** Repository URL, written to org.opencontainers.image.source. */
  source?: string;
  /** Commit id, written to org.opencontainers.image.revision. */
  revision?: string;
  /** Commit time (RFC 3339 text or Date), used for `created`; omitted when not given. */
  created?: string | Date;
}

export interface BuiltImage {
  format: ImageFormat;
  /** The exact manifest bytes; its digest is `manifestDigest`. */
  manifest: Buffer;
  manifestDigest: string;
  /** The manifest's media type (Content-Type when it is pushed). */
  mediaType: string;
  config: Blob;
  layers: Blob[];
  /** Hex sha256 of the wasm module inside. */
  wasmSha256: string;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${sha256Hex(data)}`;
}

function blob(mediaType: string, data: Buffer, annotations?: Record<string, string>): Blob {
  const b: Blob = { mediaType, digest: sha256Digest(data), size: data.length, data };
  if (annotations && Object.keys(annotations).length > 0) b.annotations = annotations;
  return b;
}

/** A descriptor as written in a manifest (no data). */
export function descriptorOf(b: Blob): { mediaType: string; digest: string; size: number; annotations?: Record<string, string> } {
  const d: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> } = {
    mediaType: b.mediaType,
    digest: b.digest,
    size: b.size,
  };
  if (b.annotations) d.annotations = b.annotations;
  return d;
}

// ---------------------------------------------------------------------------
// tar

const BLOCK = 512;

function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  // width includes the terminating NUL.
  const text = value.toString(8).padStart(width - 1, '0');
  if (text.length > width - 1) throw new Error(`tar field overflow: ${value}`);
  header.write(text, offset, width - 1, 'ascii');
  header[offset + width - 1] = 0;
}

/** The ustar header of a regular file of `size` bytes, owned by root (0/0), mode 0644. */
function tarHeader(name: string, size: number, mtimeSeconds: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  if (size > 0o77777777777) throw new Error('tar entry too large');
  const header = Buffer.alloc(BLOCK, 0);
  header.write(name, 0, 100, 'utf8');
  writeOctal(header, 100, 8, 0o644); // mode
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, size); // size
  writeOctal(header, 136, 12, mtimeSeconds); // mtime
  header.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  header.write('0', 156, 1, 'ascii'); // regular file
  header.write('ustar\u000000', 257, 8, 'binary'); // POSIX ustar magic + version "00"
  header.write('root', 265, 32, 'ascii'); // uname
  header.write('root', 297, 32, 'ascii'); // gname
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  header[154] = 0;
  header[155] = 0x20;
  return header;
}

/** What follows a file of `size` bytes: padding to a block, then the two zero blocks that end the archive. */
function tarTrailer(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK + 2 * BLOCK, 0);
}

/**
 * A ustar archive holding one regular file, owned by root (0/0), mode 0644,
 * with the given mtime (seconds). No directories, no extended headers.
 */
export function tarSingleFile(name: string, data: Buffer, mtimeSeconds = 0): Buffer {
  return Buffer.concat([tarHeader(name, data.length, mtimeSeconds), data, tarTrailer(data.length)]);
}

// ---------------------------------------------------------------------------
// gzip

const GZIP_OPTIONS: zlib.ZlibOptions = { level: 9, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY };

/**
 * Gzip with every parameter pinned. node:zlib writes no file name and an mtime
 * of 0; the OS byte is set to 255 ("unknown", as Go writes it) so the header
 * does not depend on the platform that built it.
 */
export function gzipDeterministic(data: Buffer): Buffer {
  return pinGzipHeader(zlib.gzipSync(data, GZIP_OPTIONS));
}

function pinGzipHeader(out: Buffer): Buffer {
  // Header: ID1 ID2 CM FLG MTIME(4) XFL OS. No FHCRC flag, so patching OS is safe.
  if (out[3] !== 0) throw new Error('unexpected gzip header flags');
  out.writeUInt32LE(0, 4);
  out[9] = 0xff;
  return out;
}

/**
 * The gzip of `chunks` with the same pinned parameters as gzipDeterministic,
 * and the same bytes (deflate's output does not depend on how its input is
 * split), written into one buffer sized for the worst case up front, so the
 * result is never copied and no chunk is held after it is compressed.
 */
async function gzipStream(chunks: AsyncIterable<Buffer>, inputBytes: number): Promise<Buffer> {
  // zlib's deflateBound for these settings, plus the gzip wrapper and some slack.
  let out = Buffer.allocUnsafe(inputBytes + (inputBytes >> 12) + (inputBytes >> 14) + (inputBytes >> 25) + 1024);
  let used = 0;
  await pipeline(Readable.from(chunks), zlib.createGzip({ ...GZIP_OPTIONS, chunkSize: 256 * 1024 }), async (compressed: AsyncIterable<Buffer>) => {
    for await (const c of compressed) {
      if (used + c.length > out.length) {
        const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, used + c.length));
        out.copy(bigger, 0, 0, used);
        out = bigger;
      }
      c.copy(out, used);
      used += c.length;
    }
  });
  return pinGzipHeader(out.subarray(0, used));
}

// ---------------------------------------------------------------------------
// the image

/** Normalises a commit time to RFC 3339 in UTC without fractions. */
export function normaliseCreated(created: string | Date): string {
  const date = created instanceof Date ? created : new Date(created);
  if (Number.isNaN(date.getTime())) {
    throw new UserError(`the image creation time "${String(created)}" is not a valid date (use RFC 3339, e.g. 2024-05-01T12:00:00Z)`);
  }
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function annotationsFrom(opts: Omit<BuildImageOptions, 'wasm'>, created: string | undefined): Record<string, string> {
  const a: Record<string, string> = {};
  if (created) a['org.opencontainers.image.created'] = created;
  if (opts.revision) a['org.opencontainers.image.revision'] = opts.revision;
  if (opts.source) a['org.opencontainers.image.source'] = opts.source;
  return a;
}

// Wasm is neither a Linux nor an amd64 binary: the platform names Go (and so
// the OCI image spec) uses for WebAssembly are recorded instead. Istio does
// not look at the platform of a single-manifest image.
const PLATFORM = { architecture: 'wasm', os: 'wasip1' } as const;

function imageConfig(diffId: string, created: string | undefined, labels: Record<string, string>, docker: boolean): Buffer {
  const config: Record<string, unknown> = {};
  if (created) config.created = created;
  config.architecture = PLATFORM.architecture;
  config.os = PLATFORM.os;
  if (docker && Object.keys(labels).length > 0) config.config = { Labels: labels };
  else config.config = {};
  config.rootfs = { type: 'layers', diff_ids: [diffId] };
  return Buffer.from(JSON.stringify(config));
}

function manifestBytes(mediaType: string, config: Blob, layers: Blob[], annotations?: Record<string, string>): Buffer {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    config: descriptorOf(config),
    layers: layers.map(descriptorOf),
  };
  if (annotations && Object.keys(annotations).length > 0) manifest.annotations = annotations;
  return Buffer.from(JSON.stringify(manifest));
}

export function isWasm(data: Buffer): boolean {
  return data.length >= 8 && data[0] === 0x00 && data[1] === 0x61 && data[2] === 0x73 && data[3] === 0x6d;
}

const NOT_WASM = 'the plugin is not a WebAssembly module (it does not start with "\\0asm")';

export function buildImage(opts: BuildImageOptions): BuiltImage {
  const format = opts.format ?? 'compat';
  if (!IMAGE_FORMATS.includes(format)) {
    throw new UserError(`unknown image format "${String(format)}": use one of ${IMAGE_FORMATS.join(', ')}`);
  }
  if (!isWasm(opts.wasm)) throw new UserError(NOT_WASM);
  const created = opts.created === undefined || opts.created === '' ? undefined : normaliseCreated(opts.created);
  const annotations = annotationsFrom(opts, created);
  const wasmSha256 = sha256Hex(opts.wasm);

  if (format === 'wasm-artifact') {
    // Istio's "oci" variant: exactly two layers, one of them the raw module.
    // The runtime config is both the manifest's config and the first layer,
    // as in the Wasm artifact image spec's example.
    const runtimeConfig = Buffer.from(JSON.stringify({ type: 'envoy_proxy', abiVersions: [], config: {} }));
    const config = blob(MEDIA_TYPES.wasmConfig, runtimeConfig);
    const configLayer = blob(MEDIA_TYPES.wasmConfig, runtimeConfig, { 'org.opencontainers.image.title': 'runtime-config.json' });
    const wasmLayer = blob(MEDIA_TYPES.wasmLayer, opts.wasm, { 'org.opencontainers.image.title': WASM_FILE_NAME });
    const layers = [configLayer, wasmLayer];
    const manifest = manifestBytes(MEDIA_TYPES.ociManifest, config, layers, annotations);
    return { format, manifest, manifestDigest: sha256Digest(manifest), mediaType: MEDIA_TYPES.ociManifest, config, layers, wasmSha256 };
  }

  // mtime 0 keeps the layer identical across commits, so it is uploaded once.
  const tar = tarSingleFile(WASM_FILE_NAME, opts.wasm, 0);
  return tarImage(format, gzipDeterministic(tar), sha256Digest(tar), wasmSha256, created, annotations);
}

/**
 * buildImage of the module in `file`, with the same result, reading the file
 * once as a stream: the module is hashed, framed as a tar and compressed as
 * it is read, so only the compressed layer is held whole (compat and docker;
 * a wasm-artifact's layer is the module itself, read whole once).
 */
export async function buildImageFromFile(file: string, opts: Omit<BuildImageOptions, 'wasm'>): Promise<BuiltImage> {
  const format = opts.format ?? 'compat';
  const handle = await open(file, 'r');
  try {
    if (format === 'wasm-artifact' || !IMAGE_FORMATS.includes(format)) return buildImage({ ...opts, wasm: await handle.readFile() });
    const created = opts.created === undefined || opts.created === '' ? undefined : normaliseCreated(opts.created);
    const size = (await handle.stat()).size;
    if (size < 8) throw new UserError(NOT_WASM);
    const wasmHash = createHash('sha256');
    const tarHash = createHash('sha256');
    async function* tar(): AsyncGenerator<Buffer> {
      const header = tarHeader(WASM_FILE_NAME, size, 0);
      tarHash.update(header);
      yield header;
      let read = 0;
      for await (const chunk of handle.createReadStream({ start: 0, end: size - 1, autoClose: false }) as AsyncIterable<Buffer>) {
        // The first chunk is the file's first 64 KiB (or all of it).
        if (read === 0 && !isWasm(chunk)) throw new UserError(NOT_WASM);
        read += chunk.length;
        wasmHash.update(chunk);
        tarHash.update(chunk);
        yield chunk;
      }
      if (read !== size) throw new UserError(`${file} changed while it was read (${read} bytes, ${size} expected)`);
      const trailer = tarTrailer(size);
      tarHash.update(trailer);
      yield trailer;
    }
    const gz = await gzipStream(tar(), BLOCK + size + 3 * BLOCK);
    return tarImage(format, gz, `sha256:${tarHash.digest('hex')}`, wasmHash.digest('hex'), created, annotationsFrom(opts, created));
  } finally {
    await handle.close();
  }
}

/** A compat or docker image around its gzip'd tar layer. */
function tarImage(format: ImageFormat, gz: Buffer, tarDigest: string, wasmSha256: string, created: string | undefined, annotations: Record<string, string>): BuiltImage {
  const docker = format === 'docker';
  const layer = blob(docker ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.ociLayerGzip, gz);
  const config = blob(docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig, imageConfig(tarDigest, created, annotations, docker));
  const mediaType = docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  // Docker schema 2 has no manifest annotations: they go into config labels.
  // The compat spec asks for module.wasm.image/variant=compat on OCI layers.
  const manifest = docker
    ? manifestBytes(mediaType, config, [layer])
    : manifestBytes(mediaType, config, [layer], { ...annotations, 'module.wasm.image/variant': 'compat' });
  return { format, manifest, manifestDigest: sha256Digest(manifest), mediaType, config, layers: [layer], wasmSha256 };
}

/** Every distinct blob of an image (config first), deduplicated by digest. */
export function uniqueBlobs(image: Pick<BuiltImage, 'config' | 'layers'>): Blob[] {
  const seen = new Set<string>();
  const out: Blob[] = [];
  for (const b of [image.config, ...image.layers]) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    out.push(b);
  }
  return out;
}
