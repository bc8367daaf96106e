// Manifests: PUT the exact bytes (by digest, later by tag), GET by digest to
// read back, HEAD to learn what a tag names.
import { UserError } from '../../errors.js';
import { headerOf } from '../../net/index.js';
import { MEDIA_TYPES, sha256Digest } from '../image.js';
import type { RegistryConnection, RequestSpec } from './connection.js';
import { registryErrorText } from './names.js';

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList].join(', ');

/** The digest a tag (or digest) resolves to, or undefined when it does not exist. */
export async function resolveReference(conn: RegistryConnection, reference: string): Promise<string | undefined> {
  const action = `looking up ${conn.ref}:${reference}`;
  const spec: RequestSpec = { method: 'HEAD', url: conn.url(conn.repoPath('manifests', reference)), headers: { Accept: MANIFEST_ACCEPT } };
  const res = await conn.send(action, spec);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw conn.unexpected(res, action);
  const digest = headerOf(res, 'docker-content-digest');
  if (digest) return digest;
  const full = await conn.send(action, { ...spec, method: 'GET' });
  if (full.status !== 200) throw conn.unexpected(full, action);
  return sha256Digest(full.body);
}

/** PUTs a manifest's exact bytes under `reference` (safe to repeat: the same bytes); returns the digest the registry reports. */
export async function putManifest(conn: RegistryConnection, reference: string, manifest: Buffer, mediaType: string): Promise<string> {
  const action = `pushing the manifest to ${conn.ref}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const res = await conn.send(action, {
    method: 'PUT',
    url: conn.url(conn.repoPath('manifests', reference)),
    headers: { 'Content-Type': mediaType },
    body: manifest,
  });
  if (res.status === 401 || res.status === 403) throw conn.authError(res, action);
  if (res.status !== 201 && res.status !== 200) {
    throw new UserError(`registry ${conn.address.host} rejected the manifest for ${conn.ref} (HTTP ${res.status}) while ${action}`, registryErrorText(res.body) || '(empty answer)');
  }
  const expected = sha256Digest(manifest);
  const got = headerOf(res, 'docker-content-digest');
  if (got && got !== expected) {
    throw new UserError(`registry ${conn.address.host} stored the manifest as ${got}, but its bytes have digest ${expected}: the registry rewrote it`);
  }
  return got ?? expected;
}

export async function getManifest(conn: RegistryConnection, digest: string): Promise<Buffer> {
  const action = `reading back the manifest ${conn.ref}@${digest}`;
  const res = await conn.send(action, { method: 'GET', url: conn.url(conn.repoPath('manifests', digest)), headers: { Accept: MANIFEST_ACCEPT } });
  if (res.status !== 200) throw conn.unexpected(res, action);
  return res.body;
}
