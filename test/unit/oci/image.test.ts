import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  MEDIA_TYPES,
  buildImage,
  buildImageFromFile,
  gzipDeterministic,
  normaliseCreated,
  sha256Digest,
  tarSingleFile,
  uniqueBlobs,
  type ImageFormat,
} from '../../../src/oci/image.js';
import { readTar } from '../../../src/oci/tar.js';
import { UserError } from '../../../src/errors.js';
import { wasmModule } from './helpers.js';

const wasm = wasmModule();

describe('buildImage', () => {
  it('is reproducible: same bytes and options give the same digest', () => {
    for (const format of ['compat', 'docker', 'wasm-artifact'] as ImageFormat[]) {
      const a = buildImage({ wasm, format, source: 'https://example.com/r', revision: 'abc', created: '2024-05-01T12:00:00Z' });
      const b = buildImage({ wasm: Buffer.from(wasm), format, source: 'https://example.com/r', revision: 'abc', created: '2024-05-01T12:00:00Z' });
      expect(a.manifestDigest).toBe(b.manifestDigest);
      expect(a.manifest.equals(b.manifest)).toBe(true);
      expect(a.manifestDigest).toBe(sha256Digest(a.manifest));
    }
  });

  it('gives a different digest for a different module', () => {
    expect(buildImage({ wasm }).manifestDigest).not.toBe(buildImage({ wasm: wasmModule('other') }).manifestDigest);
  });

  it('keeps the layer identical across commits (only config and manifest change)', () => {
    const a = buildImage({ wasm, revision: 'one', created: '2024-01-01T00:00:00Z' });
    const b = buildImage({ wasm, revision: 'two', created: '2024-02-01T00:00:00Z' });
    expect(a.layers[0].digest).toBe(b.layers[0].digest);
    expect(a.manifestDigest).not.toBe(b.manifestDigest);
  });

  it('compat: OCI media types, a real config whose diff_id is the uncompressed tar', () => {
    const img = buildImage({ wasm, created: '2024-05-01T12:00:00.123Z' });
    expect(img.mediaType).toBe(MEDIA_TYPES.ociManifest);
    const manifest = JSON.parse(img.manifest.toString());
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
    expect(manifest).not.toHaveProperty('artifactType');
    expect(manifest.config).toEqual({ mediaType: MEDIA_TYPES.ociConfig, digest: img.config.digest, size: img.config.size });
    expect(manifest.layers).toEqual([{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: img.layers[0].digest, size: img.layers[0].size }]);
    expect(manifest.annotations['module.wasm.image/variant']).toBe('compat');
    expect(manifest.annotations['org.opencontainers.image.created']).toBe('2024-05-01T12:00:00Z');

    const config = JSON.parse(img.config.data.toString());
    const tar = gunzipSync(img.layers[0].data);
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [sha256Digest(tar)] });
    expect(config.created).toBe('2024-05-01T12:00:00Z');
    expect(typeof config.architecture).toBe('string');
    expect(typeof config.os).toBe('string');

    const entries = readTar(tar);
    expect(entries.map((e) => e.name)).toEqual(['plugin.wasm']);
    expect(entries[0].data.equals(wasm)).toBe(true);
  });

  it('docker: schema 2 media types; annotations become labels', () => {
    const img = buildImage({ wasm, format: 'docker', source: 'https://example.com/r', revision: 'abc' });
    const manifest = JSON.parse(img.manifest.toString());
    expect(img.mediaType).toBe(MEDIA_TYPES.dockerManifest);
    expect(manifest.mediaType).toBe(MEDIA_TYPES.dockerManifest);
    expect(manifest.config.mediaType).toBe(MEDIA_TYPES.dockerConfig);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MEDIA_TYPES.dockerLayerGzip]);
    expect(manifest).not.toHaveProperty('annotations');
    const config = JSON.parse(img.config.data.toString());
    expect(config.config.Labels['org.opencontainers.image.revision']).toBe('abc');
    expect(config.rootfs.diff_ids).toEqual([sha256Digest(gunzipSync(img.layers[0].data))]);
  });

  it('wasm-artifact: two layers (runtime config, raw wasm), as Istio requires', () => {
    const img = buildImage({ wasm, format: 'wasm-artifact', revision: 'abc' });
    const manifest = JSON.parse(img.manifest.toString());
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
    expect(manifest.config.mediaType).toBe(MEDIA_TYPES.wasmConfig);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MEDIA_TYPES.wasmConfig, MEDIA_TYPES.wasmLayer]);
    expect(img.layers[1].data.equals(wasm)).toBe(true);
    expect(manifest.annotations['org.opencontainers.image.revision']).toBe('abc');
    // config and first layer are one blob
    expect(uniqueBlobs(img)).toHaveLength(2);
  });

  it('writes no created time when none is given (never the clock)', () => {
    const img = buildImage({ wasm });
    expect(JSON.parse(img.config.data.toString())).not.toHaveProperty('created');
    expect(JSON.parse(img.manifest.toString()).annotations).toEqual({ 'module.wasm.image/variant': 'compat' });
  });

  it('refuses non-wasm input and unknown formats', () => {
    expect(() => buildImage({ wasm: Buffer.from('hello world!') })).toThrow(UserError);
    expect(() => buildImage({ wasm, format: 'zip' as ImageFormat })).toThrow(/unknown image format/);
    expect(() => normaliseCreated('yesterday')).toThrow(UserError);
  });
});

describe('tar and gzip', () => {
  it('tar entry: root owned, mode 0644, fixed mtime, padded to blocks', () => {
    const tar = tarSingleFile('plugin.wasm', wasm, 0);
    expect(tar.length % 512).toBe(0);
    expect(tar.length).toBe(512 + 512 + 1024);
    expect(tar.subarray(100, 107).toString()).toBe('0000644');
    expect(tar.subarray(108, 115).toString()).toBe('0000000');
    expect(tar.subarray(116, 123).toString()).toBe('0000000');
    expect(tar.subarray(136, 147).toString()).toBe('00000000000');
    expect(tar.subarray(257, 263).toString('latin1')).toBe('ustar\0');
    expect(readTar(tar)[0].data.equals(wasm)).toBe(true);
  });

  it('gzip header has no mtime, no name, no flags and a fixed OS byte', () => {
    const gz = gzipDeterministic(Buffer.from('some data'.repeat(100)));
    expect(gz[0]).toBe(0x1f);
    expect(gz[1]).toBe(0x8b);
    expect(gz[3]).toBe(0); // FLG: no FNAME, FCOMMENT, FEXTRA, FHCRC
    expect(gz.readUInt32LE(4)).toBe(0); // MTIME
    expect(gz[9]).toBe(0xff);
    expect(gunzipSync(gz).toString()).toBe('some data'.repeat(100));
    expect(gzipDeterministic(Buffer.from('x')).equals(gzipDeterministic(Buffer.from('x')))).toBe(true);
  });
});

describe('buildImageFromFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'image-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A module larger than one read (64 KiB) and one gzip output chunk (16 KiB), half of it incompressible.
  const large = Buffer.concat([wasm, Buffer.alloc(200_000, 7), randomBytes(300_000)]);

  it.each([
    ['small', wasm],
    ['large', large],
  ])('gives the same image as buildImage from the bytes (%s module)', async (_name, bytes) => {
    const file = join(dir, 'plugin.wasm');
    writeFileSync(file, bytes);
    for (const format of ['compat', 'docker', 'wasm-artifact'] as ImageFormat[]) {
      const opts = { format, source: 'https://example.com/r', revision: 'abc', created: '2024-05-01T12:00:00Z' };
      const fromBytes = buildImage({ wasm: bytes, ...opts });
      const fromFile = await buildImageFromFile(file, opts);
      expect(fromFile.manifestDigest).toBe(fromBytes.manifestDigest);
      expect(fromFile.config.data.equals(fromBytes.config.data)).toBe(true);
      expect(fromFile.layers.map((l) => l.digest)).toEqual(fromBytes.layers.map((l) => l.digest));
      expect(fromFile.layers.every((l, i) => l.data.equals(fromBytes.layers[i].data))).toBe(true);
      expect(fromFile.wasmSha256).toBe(fromBytes.wasmSha256);
    }
  });

  it('refuses a file that is not a module, and a missing file', async () => {
    const file = join(dir, 'not.wasm');
    writeFileSync(file, 'not a module, but longer than the magic');
    await expect(buildImageFromFile(file, {})).rejects.toThrow(UserError);
    writeFileSync(file, '');
    await expect(buildImageFromFile(file, {})).rejects.toThrow(/not a WebAssembly module/);
    await expect(buildImageFromFile(join(dir, 'missing.wasm'), {})).rejects.toThrow(/ENOENT/);
  });
});
