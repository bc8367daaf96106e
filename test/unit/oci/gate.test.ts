import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEDIA_TYPES, buildImage, gzipDeterministic, sha256Digest, sha256Hex, tarSingleFile, type Blob, type BuiltImage } from '../../../src/oci/image.js';
import { EMPTY_DESCRIPTOR_DIGEST, gate, layoutSource, memorySource, readTar } from '../../../src/oci/gate.js';
import { writeLayout } from '../../../src/oci/layout.js';
import { UserError } from '../../../src/errors.js';
import { wasmModule } from './helpers.js';

const wasm = wasmModule();
const wasmSha = sha256Hex(wasm);

function sourceOf(image: Pick<BuiltImage, 'manifest' | 'config' | 'layers'>) {
  const blobs = new Map<string, Buffer>();
  for (const b of [image.config, ...image.layers]) blobs.set(b.digest, b.data);
  const digest = sha256Digest(image.manifest);
  return { source: memorySource('mem/test', new Map([[digest, image.manifest]]), blobs), digest };
}

function blob(mediaType: string, data: Buffer): Blob {
  return { mediaType, digest: sha256Digest(data), size: data.length, data };
}

/** A hand-made manifest over the given blobs. */
function custom(mediaType: string | undefined, config: Blob, layers: Blob[], extra: Record<string, unknown> = {}) {
  const m: Record<string, unknown> = { schemaVersion: 2 };
  if (mediaType) m.mediaType = mediaType;
  m.config = { mediaType: config.mediaType, digest: config.digest, size: config.size };
  m.layers = layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  Object.assign(m, extra);
  return { manifest: Buffer.from(JSON.stringify(m)), config, layers };
}

const ociConfig = blob(MEDIA_TYPES.ociConfig, Buffer.from('{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers","diff_ids":[]}}'));

describe('gate accepts what Istio loads', () => {
  it.each(['compat', 'docker', 'wasm-artifact'] as const)('%s image built here', async (format) => {
    const { source, digest } = sourceOf(buildImage({ wasm, format }));
    const r = await gate(source, digest, wasmSha);
    expect(r.variant).toBe(format);
    expect(r.wasm.equals(wasm)).toBe(true);
    expect(r.manifestDigest).toBe(digest);
  });

  it('accepts the sha with a sha256: prefix', async () => {
    const { source, digest } = sourceOf(buildImage({ wasm }));
    await expect(gate(source, digest, `sha256:${wasmSha}`)).resolves.toMatchObject({ variant: 'compat' });
  });

  it('compat: only the LAST layer counts, and plugin.wasm may sit in a directory', async () => {
    const other = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('README', Buffer.from('x'))));
    const last = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('dir/plugin.wasm', wasm)));
    const { source, digest } = sourceOf(custom(MEDIA_TYPES.ociManifest, ociConfig, [other, last]));
    await expect(gate(source, digest, wasmSha)).resolves.toMatchObject({ variant: 'compat' });
  });

  it('OCI manifest without a mediaType field is read as compat (as Istio does)', async () => {
    const layer = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('plugin.wasm', wasm)));
    const { source, digest } = sourceOf(custom(undefined, ociConfig, [layer]));
    await expect(gate(source, digest, wasmSha)).resolves.toMatchObject({ variant: 'compat' });
  });

  it('wasm artifact with the wasm layer first is fine', async () => {
    const cfg = blob(MEDIA_TYPES.wasmConfig, Buffer.from('{"type":"envoy_proxy"}'));
    const { source, digest } = sourceOf(custom(MEDIA_TYPES.ociManifest, cfg, [blob(MEDIA_TYPES.wasmLayer, wasm), cfg]));
    await expect(gate(source, digest, wasmSha)).resolves.toMatchObject({ variant: 'wasm-artifact' });
  });

  it('reads a layout directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-layout-'));
    try {
      const img = buildImage({ wasm, format: 'docker' });
      await writeLayout(dir, img, ['v1']);
      await expect(gate(layoutSource(dir), img.manifestDigest, wasmSha)).resolves.toMatchObject({ variant: 'docker' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gate refuses', () => {
  async function refusal(image: Pick<BuiltImage, 'manifest' | 'config' | 'layers'>, sha = wasmSha): Promise<string> {
    const { source, digest } = sourceOf(image);
    try {
      await gate(source, digest, sha);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      return (err as Error).message;
    }
    throw new Error('gate accepted the image');
  }

  it('an image index', async () => {
    const img = buildImage({ wasm });
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length }] }),
    );
    const blobs = new Map<string, Buffer>([[img.config.digest, img.config.data], [img.layers[0].digest, img.layers[0].data], [img.manifestDigest, img.manifest]]);
    const source = memorySource('mem/test', new Map([[sha256Digest(index), index]]), blobs);
    await expect(gate(source, sha256Digest(index), wasmSha)).rejects.toThrow(/image index/);
  });

  it('a zstd layer', async () => {
    const layer = blob(MEDIA_TYPES.ociLayerZstd, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]));
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, ociConfig, [layer]))).toMatch(/invalid media type application\/vnd.oci.image.layer.v1.tar\+zstd/);
  });

  it('a single raw wasm layer (Istio needs exactly two)', async () => {
    const cfg = blob(MEDIA_TYPES.wasmConfig, Buffer.from('{"type":"envoy_proxy"}'));
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, cfg, [blob(MEDIA_TYPES.wasmLayer, wasm)]))).toMatch(/number of layers must be 2 but got 1/);
  });

  it('an empty-descriptor layer or config', async () => {
    const empty = blob(MEDIA_TYPES.ociEmpty, Buffer.from('{}'));
    expect(empty.digest).toBe(EMPTY_DESCRIPTOR_DIGEST);
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, empty, [empty, blob(MEDIA_TYPES.wasmLayer, wasm)]))).toMatch(/empty descriptor/);
    const cfg = blob(MEDIA_TYPES.wasmConfig, Buffer.from('{"type":"envoy_proxy"}'));
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, cfg, [empty, blob(MEDIA_TYPES.wasmLayer, wasm)]))).toMatch(/empty descriptor/);
  });

  it('a module with another sha256', async () => {
    expect(await refusal(buildImage({ wasm: wasmModule('something else') }))).toMatch(/has sha256 .* but the built plugin has/);
  });

  it('a plugin.wasm without the wasm magic', async () => {
    const notWasm = Buffer.from('this is not wasm at all');
    const layer = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('plugin.wasm', notWasm)));
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, ociConfig, [layer]), sha256Hex(notWasm))).toMatch(/magic/);
  });

  it('a docker manifest whose last layer is not a docker layer (no fallback to compat)', async () => {
    const layer = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('plugin.wasm', wasm)));
    expect(await refusal(custom(MEDIA_TYPES.dockerManifest, ociConfig, [layer]))).toMatch(/as a Docker image: invalid media type/);
  });

  it('a compat layer without plugin.wasm', async () => {
    const layer = blob(MEDIA_TYPES.ociLayerGzip, gzipDeterministic(tarSingleFile('filter.wasm', wasm)));
    expect(await refusal(custom(MEDIA_TYPES.ociManifest, ociConfig, [layer]))).toMatch(/plugin.wasm not found/);
  });

  it('a blob that does not match its digest', async () => {
    const img = buildImage({ wasm });
    const { digest } = sourceOf(img);
    const source = memorySource('mem/test', new Map([[digest, img.manifest]]), new Map([[img.layers[0].digest, Buffer.from('tampered')]]));
    await expect(gate(source, digest, wasmSha)).rejects.toThrow(/different content/);
  });

  it('a manifest that does not hash to the requested digest', async () => {
    const img = buildImage({ wasm });
    const wrong = `sha256:${'0'.repeat(64)}`;
    const source = memorySource('mem/test', new Map([[wrong, img.manifest]]), new Map());
    await expect(gate(source, wrong, wasmSha)).rejects.toThrow(/digest/);
  });
});

describe('readTar', () => {
  it('honours PAX path records', () => {
    const record = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let len = body.length + 2;
      if (String(len).length + body.length !== len) len = String(len + 1).length + body.length;
      return `${len}${body}`;
    };
    const paxData = Buffer.from(record('path', 'a/very/long/name/plugin.wasm'));
    const pax = tarSingleFile('PaxHeader', paxData);
    // turn the first entry into a PAX header: typeflag 'x' and a fixed checksum
    const header = Buffer.from(pax.subarray(0, 512));
    header.write('x', 156);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0'), 148);
    header[154] = 0;
    const paxEntry = Buffer.concat([header, pax.subarray(512, 1024)]);
    const file = tarSingleFile('short', wasm);
    const entries = readTar(Buffer.concat([paxEntry, file]));
    expect(entries).toHaveLength(1);
    expect(entries[0].name).toBe('a/very/long/name/plugin.wasm');
  });
});
