import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEDIA_TYPES, buildImage, gzipDeterministic, sha256Digest, sha256Hex, tarSingleFile, type Blob, type BuiltImage } from '../../../src/oci/image.js';
import { EMPTY_DESCRIPTOR_DIGEST, gate, layoutSource, memorySource } from '../../../src/oci/gate.js';
import { readTar } from '../../../src/oci/tar.js';
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
    expect(r.wasm?.equals(wasm)).toBe(true);
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

describe('gate reads a layer back as a stream when the source gives a file', () => {
  /** One tar entry (header, data, padding) of the given type flag. */
  function entry(name: string, data: Buffer, type = '0'): Buffer {
    const one = Buffer.from(tarSingleFile(name, data).subarray(0, -1024));
    one.write(type, 156);
    one.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += one[i];
    one.write(sum.toString(8).padStart(6, '0'), 148);
    one[154] = 0;
    return one;
  }
  const end = Buffer.alloc(1024);
  const paxRecord = (k: string, v: string) => {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 2;
    if (String(len).length + body.length !== len) len = String(len + 1).length + body.length;
    return Buffer.from(`${len}${body}`);
  };
  // Larger than the stream's chunks, so the module spans many of them.
  const big = Buffer.concat([wasm, randomBytes(200_000)]);
  const tars: Array<[string, Buffer, Buffer, boolean]> = [
    ['plugin.wasm after another file', Buffer.concat([entry('README', Buffer.from('hello')), entry('plugin.wasm', big), end]), big, true],
    ['a PAX path', Buffer.concat([entry('PaxHeader', paxRecord('path', 'a/b/plugin.wasm'), 'x'), entry('short', big), end]), big, true],
    ['a GNU long name', Buffer.concat([entry('././@LongLink', Buffer.from(`${'d/'.repeat(80)}plugin.wasm\0`), 'L'), entry('x', wasm), end]), wasm, true],
    ['the first of two plugin.wasm', Buffer.concat([entry('plugin.wasm', wasm), entry('dir/plugin.wasm', big), end]), wasm, true],
    ['no plugin.wasm', Buffer.concat([entry('filter.wasm', wasm), end]), wasm, false],
    ['a plugin.wasm that is not a module', Buffer.concat([entry('plugin.wasm', Buffer.from('not a module at all')), end]), Buffer.from('not a module at all'), false],
    ['an archive cut short', Buffer.concat([entry('plugin.wasm', big)]).subarray(0, 100_000), big, false],
    ['a corrupt header', Buffer.concat([entry('plugin.wasm', wasm).fill(1, 0, 10), end]), wasm, false],
  ];

  /** The image in memory, and the same image as files (an OCI layout's blobs). */
  function bothSources(layer: Buffer): { memory: ReturnType<typeof memorySource>; files: ReturnType<typeof layoutSource>; digest: string; dir: string } {
    const img = custom(MEDIA_TYPES.ociManifest, ociConfig, [blob(MEDIA_TYPES.ociLayerGzip, layer)]);
    const { source, digest } = sourceOf(img);
    const dir = mkdtempSync(join(tmpdir(), 'gate-stream-'));
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const data of [img.manifest, img.config.data, ...img.layers.map((l) => l.data)]) writeFileSync(join(dir, 'blobs', 'sha256', sha256Hex(data)), data);
    return { memory: source, files: layoutSource(dir), digest, dir };
  }

  const outcome = (p: Promise<{ variant: string; wasmSha256: string }>) =>
    p.then(
      (r) => ({ ok: `${r.variant} ${r.wasmSha256}` }),
      (err: Error) => ({ error: err.message.replace(/mem\/test|layout [^@\s]+/, 'SOURCE') }),
    );

  it.each(tars)('%s: the same outcome as reading it whole', async (_name, tar, module, accepted) => {
    const { memory, files, digest, dir } = bothSources(gzipDeterministic(tar));
    try {
      const streamed = await outcome(gate(files, digest, sha256Hex(module)));
      expect(streamed).toEqual(await outcome(gate(memory, digest, sha256Hex(module))));
      if (accepted) expect(streamed).toEqual({ ok: `compat ${sha256Hex(module)}` });
      else expect(streamed).toHaveProperty('error');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a layer that is not gzip, and a layer file changed on disk', async () => {
    const { files, digest, dir } = bothSources(Buffer.from('not gzip at all'));
    try {
      await expect(gate(files, digest, wasmSha)).rejects.toThrow(/failed to parse layer as tar.gz/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const good = bothSources(gzipDeterministic(Buffer.concat([entry('plugin.wasm', wasm), end])));
    try {
      await expect(gate(good.files, good.digest, wasmSha)).resolves.toMatchObject({ variant: 'compat', wasmSha256: wasmSha });
      const layerDigest = (JSON.parse((await good.files.getManifest(good.digest)).toString()) as { layers: Array<{ digest: string }> }).layers[0].digest;
      writeFileSync(join(good.dir, 'blobs', 'sha256', layerDigest.slice(7)), gzipDeterministic(Buffer.concat([entry('plugin.wasm', big), end])));
      await expect(gate(good.files, good.digest, wasmSha)).rejects.toThrow(/different content/);
    } finally {
      rmSync(good.dir, { recursive: true, force: true });
    }
  });

  it('the wasm-artifact and docker images built here', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-stream-'));
    try {
      for (const format of ['docker', 'wasm-artifact'] as const) {
        const img = buildImage({ wasm: big, format });
        await writeLayout(join(dir, format), img, ['v1']);
        const r = await gate(layoutSource(join(dir, format)), img.manifestDigest, sha256Hex(big));
        expect(r).toMatchObject({ variant: format, wasmSha256: sha256Hex(big) });
        expect(r.wasm).toBeUndefined();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
