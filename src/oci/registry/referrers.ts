// Referrers (distribution-spec 1.1): an artifact manifest whose `subject` is
// the image, and the two ways a reader finds it again.
//
// - A registry with the referrers API answers the manifest PUT with an
//   `OCI-Subject: <subject digest>` header and lists the artifact at
//   GET /v2/<name>/referrers/<digest>.
// - A registry without it (distribution 2.8, Debian's docker-registry, many
//   self-hosted ones) does neither; then the client that pushed keeps the
//   list itself, in an image index at the tag `<alg>-<hex>` of the subject
//   digest (the referrers tag schema): pull it (a 404 is an empty list),
//   append a descriptor for the new manifest unless it is already there,
//   with the manifest's artifactType and annotations, and push it back. A tag
//   that holds something other than an image index is reported, not
//   overwritten.
//
// Two clients updating the same list at once can lose an entry (the spec
// leaves that to clients; distribution 2.8 has no conditional PUT). The
// list is read again after the PUT and the entry checked, so a lost race is
// an error, never a silent miss.
import { UserError } from '../../errors.js';
import { headerOf } from '../../net/index.js';
import { MEDIA_TYPES, sha256Digest, type Blob } from '../image.js';
import type { RegistryConnection } from './connection.js';
import type { RegistryClient } from './client.js';
import { registryErrorText } from './names.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

/** The empty JSON object `{}`, the config of an artifact that has none (image-spec "Guidelines for Artifact Usage"). */
export const EMPTY_CONFIG: Blob = { mediaType: MEDIA_TYPES.ociEmpty, digest: sha256Digest('{}'), size: 2, data: Buffer.from('{}') };

export interface ArtifactManifest {
  manifest: Buffer;
  digest: string;
  mediaType: string;
  artifactType: string;
  annotations: Record<string, string>;
  /** The blobs it names (the empty config, then the layers). */
  blobs: Blob[];
}

/**
 * An OCI 1.1 artifact: an image manifest with `artifactType`, the empty
 * config and the given layers, whose `subject` is `subject`.
 */
export function artifactManifest(subject: Descriptor, artifactType: string, layers: Blob[], annotations: Record<string, string> = {}): ArtifactManifest {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType,
    config: { mediaType: EMPTY_CONFIG.mediaType, digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  if (Object.keys(annotations).length > 0) manifest.annotations = annotations;
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { manifest: bytes, digest: sha256Digest(bytes), mediaType: MEDIA_TYPES.ociManifest, artifactType, annotations, blobs: [EMPTY_CONFIG, ...layers] };
}

/** The referrers tag schema: `sha256:<hex>` → `sha256-<hex>` (the reference part cut at 64 characters). */
export function referrersTag(digest: string): string {
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(digest);
  if (!m) throw new UserError(`"${digest}" is not a digest (algorithm:hex)`);
  return `${m[1]}-${m[2].slice(0, 64)}`;
}

/** The descriptor a referrers list holds for `a`. */
export function referrerDescriptor(a: Pick<ArtifactManifest, 'mediaType' | 'digest' | 'manifest' | 'artifactType' | 'annotations'>): Descriptor {
  const d: Descriptor = { mediaType: a.mediaType, digest: a.digest, size: a.manifest.length, artifactType: a.artifactType };
  if (Object.keys(a.annotations).length > 0) d.annotations = { ...a.annotations };
  return d;
}

const INDEX_ACCEPT = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList].join(', ');

/** The referrers list at the fallback tag; an empty one when the tag does not exist. */
async function readTagList(conn: RegistryConnection, tag: string): Promise<ImageIndex> {
  const action = `reading the referrers list ${conn.ref}:${tag}`;
  const res = await conn.send(action, { method: 'GET', url: conn.url(conn.repoPath('manifests', tag)), headers: { Accept: INDEX_ACCEPT } });
  if (res.status === 404) return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  if (res.status !== 200) throw conn.unexpected(res, action);
  let parsed: Partial<ImageIndex> | undefined;
  try {
    parsed = JSON.parse(res.body.toString('utf8')) as Partial<ImageIndex>;
  } catch {
    parsed = undefined;
  }
  const type = headerOf(res, 'content-type')?.split(';')[0].trim();
  if (!parsed || (parsed.mediaType ?? type) !== MEDIA_TYPES.ociIndex || !Array.isArray(parsed.manifests)) {
    throw new UserError(
      `${conn.ref}:${tag} holds ${parsed?.mediaType ?? type ?? 'something'} instead of the image index of referrers the OCI referrers tag schema keeps there; nothing was changed. Move that tag away (it is reserved for the referrers of ${tag.replace('-', ':')}) and push again`,
    );
  }
  return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: parsed.manifests };
}

/** GET /v2/<name>/referrers/<digest>: the list, or undefined when the registry has no referrers API (404). */
async function readApiList(conn: RegistryConnection, digest: string): Promise<ImageIndex | undefined> {
  const action = `listing the referrers of ${conn.ref}@${digest}`;
  const res = await conn.send(action, { method: 'GET', url: conn.url(`/v2/${conn.repository}/referrers/${digest}`), headers: { Accept: MEDIA_TYPES.ociIndex } });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw conn.unexpected(res, action);
  const parsed = JSON.parse(res.body.toString('utf8')) as ImageIndex;
  return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: parsed.manifests ?? [] };
}

/**
 * The referrers of `digest`, as a reader finds them: the referrers API, else
 * (a 404) the fallback tag. `via` says which answered.
 */
export async function listReferrers(client: RegistryClient, digest: string): Promise<{ via: 'api' | 'tag'; manifests: Descriptor[] }> {
  const api = await readApiList(client, digest);
  if (api) return { via: 'api', manifests: api.manifests };
  return { via: 'tag', manifests: (await readTagList(client, referrersTag(digest))).manifests };
}

export interface AttachResult {
  /** The artifact manifest's digest. */
  digest: string;
  /** How it can be found: the registry's referrers API, or the fallback tag this push updated. */
  via: 'api' | 'tag';
  /** The fallback tag, when it was used. */
  tag?: string;
  /** Blobs uploaded this time (the rest were there). */
  uploaded: number;
}

/**
 * Pushes `artifact` (its blobs, then its manifest by digest) and makes it
 * findable from its subject: by the registry itself when it answers with
 * OCI-Subject, else through the referrers tag schema.
 */
export async function attachReferrer(client: RegistryClient, artifact: ArtifactManifest, subjectDigest: string, log: (line: string) => void = () => {}): Promise<AttachResult> {
  let uploaded = 0;
  for (const b of artifact.blobs) {
    if (await client.blobExists(b.digest)) continue;
    await client.uploadBlob(b);
    uploaded++;
  }
  const action = `pushing the artifact manifest ${client.ref}@${artifact.digest}`;
  const res = await client.send(action, {
    method: 'PUT',
    url: client.url(client.repoPath('manifests', artifact.digest)),
    headers: { 'Content-Type': artifact.mediaType },
    body: artifact.manifest,
  });
  if (res.status === 401 || res.status === 403) throw client.authError(res, action);
  if (res.status !== 201 && res.status !== 200) {
    throw new UserError(`registry ${client.address.host} rejected the artifact manifest for ${client.ref} (HTTP ${res.status}) while ${action}`, registryErrorText(res.body) || '(empty answer)');
  }
  const stored = headerOf(res, 'docker-content-digest');
  if (stored && stored !== artifact.digest) {
    throw new UserError(`registry ${client.address.host} stored the artifact manifest as ${stored}, but its bytes have digest ${artifact.digest}: the registry rewrote it`);
  }
  if (headerOf(res, 'oci-subject') === subjectDigest) {
    log(`pushed ${artifact.artifactType} ${artifact.digest}; the registry lists it as a referrer of ${subjectDigest}`);
    return { digest: artifact.digest, via: 'api', uploaded };
  }

  // No referrers API: keep the list at the fallback tag.
  const tag = referrersTag(subjectDigest);
  const list = await readTagList(client, tag);
  if (list.manifests.some((m) => m.digest === artifact.digest)) {
    log(`pushed ${artifact.artifactType} ${artifact.digest}; ${client.ref}:${tag} already lists it`);
    return { digest: artifact.digest, via: 'tag', tag, uploaded };
  }
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [...list.manifests, referrerDescriptor(artifact)] };
  await client.putManifest(tag, Buffer.from(JSON.stringify(index)), MEDIA_TYPES.ociIndex);
  const after = await readTagList(client, tag);
  if (!after.manifests.some((m) => m.digest === artifact.digest)) {
    throw new UserError(`${client.ref}:${tag} does not list ${artifact.digest} after it was updated: another push changed the referrers list at the same time; push again`);
  }
  log(`pushed ${artifact.artifactType} ${artifact.digest}; no referrers API at ${client.address.host}, so ${client.ref}:${tag} lists it (OCI referrers tag schema)`);
  return { digest: artifact.digest, via: 'tag', tag, uploaded };
}
