// Blobs: HEAD to skip what is there, upload (POST a session, then one PUT, or
// PATCH chunks then PUT above a size threshold), read back with redirects.
import { UserError } from '../../errors.js';
import { headerOf } from '../../net/index.js';
import type { HttpResponse, RegistryConnection } from './connection.js';

export async function blobExists(conn: RegistryConnection, digest: string): Promise<boolean> {
  const action = `checking blob ${digest}`;
  const res = await conn.send(action, { method: 'HEAD', url: conn.url(conn.repoPath('blobs', digest)) });
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw conn.unexpected(res, action);
}

/**
 * Uploads one blob. The POST that opens an upload session is not safe to
 * repeat on its own (the session it opened may be half written), so a
 * transient failure anywhere restarts the whole upload: a new session, the
 * blob sent whole.
 */
export async function uploadBlob(conn: RegistryConnection, blob: { digest: string; data: Buffer }): Promise<void> {
  const action = `uploading blob ${blob.digest} (${blob.data.length} bytes)`;
  const octets = { 'Content-Type': 'application/octet-stream' };
  await conn.retrying(action, async () => {
    const start = await conn.authorized({ method: 'POST', url: conn.url(`/v2/${conn.repository}/blobs/uploads/`) });
    conn.check(start, [202], action);
    let location = uploadLocation(conn, start, action);
    let done: HttpResponse;
    if (blob.data.length > conn.chunkThreshold) {
      for (let offset = 0; offset < blob.data.length; offset += conn.chunkSize) {
        const chunk = blob.data.subarray(offset, Math.min(offset + conn.chunkSize, blob.data.length));
        const res = await conn.authorized({
          method: 'PATCH',
          url: location,
          headers: { ...octets, 'Content-Range': `${offset}-${offset + chunk.length - 1}` },
          body: chunk,
        });
        conn.check(res, [202], action);
        location = uploadLocation(conn, res, action);
      }
      done = await conn.authorized({ method: 'PUT', url: withDigest(location, blob.digest), headers: octets });
    } else {
      done = await conn.authorized({ method: 'PUT', url: withDigest(location, blob.digest), headers: octets, body: blob.data });
    }
    conn.check(done, [201], action);
    const got = headerOf(done, 'docker-content-digest');
    if (got && got !== blob.digest) throw new UserError(`registry ${conn.address.host} stored ${got} while ${action}: the content changed on the way`);
  });
}

/** A blob's bytes; with `toFile`, written to that file (a layer read back without holding it whole) and an empty buffer returned. */
export async function getBlob(conn: RegistryConnection, digest: string, toFile?: string): Promise<Buffer> {
  const action = `reading back blob ${digest}`;
  let url = conn.url(conn.repoPath('blobs', digest));
  for (let hop = 0; hop < 6; hop++) {
    const res = await conn.send(action, { method: 'GET', url, toFile });
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const loc = headerOf(res, 'location');
      if (!loc) break;
      url = new URL(loc, url);
      continue;
    }
    if (res.status !== 200) throw conn.unexpected(res, action);
    return res.body;
  }
  throw new UserError(`registry ${conn.address.host} redirected too often while ${action}`);
}

function uploadLocation(conn: RegistryConnection, res: HttpResponse, action: string): URL {
  const loc = headerOf(res, 'location');
  if (!loc) throw new UserError(`registry ${conn.address.host} gave no upload location while ${action}`);
  return new URL(loc, conn.base());
}

function withDigest(location: URL, digest: string): URL {
  const u = new URL(location.href);
  u.search = `${u.search ? `${u.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
  return u;
}
