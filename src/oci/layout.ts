// Writes an image into an OCI image layout directory (image-spec
// image-layout.md): `oci-layout`, `index.json` and `blobs/sha256/<hex>`.
// Used when no registry is given; tools such as skopeo read it as `oci:<dir>:<tag>`.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { MEDIA_TYPES, type BuiltImage, uniqueBlobs } from './image.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: IndexEntry[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes `data` atomically (temp file + rename), so a crash leaves no half blob. */
async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Adds the image to the layout at `dir` (created if needed). Each tag becomes
 * an index entry with org.opencontainers.image.ref.name; an existing entry
 * with the same name is replaced, others are kept. With no tags the manifest
 * is listed once without a name. Returns how many blobs were written and how
 * many were already there.
 */
export async function writeLayout(dir: string, image: BuiltImage, tags: string[]): Promise<{ written: number; skipped: number }> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  await writeAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  let written = 0;
  let skipped = 0;
  for (const b of uniqueBlobs(image)) {
    const path = join(blobsDir, b.digest.slice('sha256:'.length));
    if (await exists(path)) {
      skipped++;
      continue;
    }
    await writeAtomic(path, b.data);
    written++;
  }
  // The manifest goes in last, once every blob it names is in place.
  const manifestPath = join(blobsDir, image.manifestDigest.slice('sha256:'.length));
  if (!(await exists(manifestPath))) await writeAtomic(manifestPath, image.manifest);

  const indexPath = join(dir, 'index.json');
  let index: LayoutIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  if (await exists(indexPath)) {
    const parsed = await readIndex(indexPath);
    index = { ...parsed, mediaType: MEDIA_TYPES.ociIndex };
  }
  const entry = (tag?: string): IndexEntry => ({
    mediaType: image.mediaType,
    digest: image.manifestDigest,
    size: image.manifest.length,
    ...(tag ? { annotations: { [REF_NAME_ANNOTATION]: tag } } : {}),
  });
  const ours = new Set(tags);
  const kept = index.manifests.filter((m) => {
    const name = m.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined) return !ours.has(name);
    // an unnamed entry for the same manifest is replaced
    return m.digest !== image.manifestDigest;
  });
  const added = tags.length > 0 ? tags.map(entry) : [entry()];
  index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [...kept, ...added] };
  await writeAtomic(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  return { written, skipped };
}

/** The manifest digest a tag names in a layout, if any. */
export async function layoutTagDigest(dir: string, tag: string): Promise<string | undefined> {
  const indexPath = join(dir, 'index.json');
  if (!(await exists(indexPath))) return undefined;
  const index = await readIndex(indexPath);
  return index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest;
}

/** A layout's index.json, or a one-line error naming the file and the fix. */
async function readIndex(indexPath: string): Promise<LayoutIndex> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new UserError(`${indexPath} is not valid JSON (${(err as Error).message}); delete the layout folder (${dirname(indexPath)}) and run the push stage again`);
  }
  const p = parsed as LayoutIndex | null;
  if (!p || typeof p !== 'object' || !Array.isArray(p.manifests) || p.manifests.some((m) => !m || typeof m.digest !== 'string')) {
    throw new UserError(`${indexPath} is not an OCI image index (it needs a "manifests" list of descriptors); delete the layout folder (${dirname(indexPath)}) and run the push stage again`);
  }
  return p;
}
