import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../../src/oci/image.js';
import { layoutTagDigest, writeLayout } from '../../../src/oci/layout.js';
import { wasmModule } from './helpers.js';

describe('writeLayout', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'layout-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes oci-layout, index.json and content-addressed blobs', async () => {
    const img = buildImage({ wasm: wasmModule() });
    expect(await writeLayout(dir, img, ['v1.0.0', 'latest'])).toEqual({ written: 2, skipped: 0 });
    expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index.schemaVersion).toBe(2);
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'])).toEqual(['v1.0.0', 'latest']);
    expect(readdirSync(join(dir, 'blobs', 'sha256')).sort()).toEqual([img.config.digest, img.layers[0].digest, img.manifestDigest].map((d) => d.slice(7)).sort());
    expect(readFileSync(join(dir, 'blobs', 'sha256', img.manifestDigest.slice(7))).equals(img.manifest)).toBe(true);
  });

  it('adds to an existing layout, moving only the named tags', async () => {
    const one = buildImage({ wasm: wasmModule('one') });
    const two = buildImage({ wasm: wasmModule('two') });
    await writeLayout(dir, one, ['v1', 'latest']);
    expect(await writeLayout(dir, two, ['latest'])).toEqual({ written: 2, skipped: 0 });
    expect(await layoutTagDigest(dir, 'v1')).toBe(one.manifestDigest);
    expect(await layoutTagDigest(dir, 'latest')).toBe(two.manifestDigest);
    expect(await writeLayout(dir, two, ['latest'])).toEqual({ written: 0, skipped: 2 });
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(2);
  });
});
