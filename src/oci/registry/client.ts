// The registry client: the connection (connection.ts) with the operations
// the push stage needs, each in the file of its job.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir } from '../../github.js';
import type { ImageSource } from '../gate.js';
import { blobExists, getBlob, uploadBlob } from './blobs.js';
import { RegistryConnection } from './connection.js';
import { getManifest, putManifest, resolveReference } from './manifests.js';

export class RegistryClient extends RegistryConnection {
  blobExists(digest: string): Promise<boolean> {
    return blobExists(this, digest);
  }

  /** Uploads one blob (a new upload session on each retry). */
  uploadBlob(blob: { digest: string; data: Buffer }): Promise<void> {
    return uploadBlob(this, blob);
  }

  getBlob(digest: string): Promise<Buffer> {
    return getBlob(this, digest);
  }

  /** The digest a tag (or digest) resolves to, or undefined when it does not exist. */
  resolve(reference: string): Promise<string | undefined> {
    return resolveReference(this, reference);
  }

  /** PUTs a manifest's exact bytes under `reference`; returns the digest the registry reports. */
  putManifest(reference: string, manifest: Buffer, mediaType: string): Promise<string> {
    return putManifest(this, reference, manifest, mediaType);
  }

  getManifest(digest: string): Promise<Buffer> {
    return getManifest(this, digest);
  }

  /** This repository as a gate source (reads by digest). */
  source(): ImageSource {
    return {
      name: this.ref,
      getManifest: (d) => this.getManifest(d),
      getBlob: (d) => this.getBlob(d),
      // Layers are read back through a temporary file, so a large module is never held whole.
      blobFile: async (d) => {
        const dir = makeTempDir('blob');
        const done = () => fs.rmSync(dir, { recursive: true, force: true });
        try {
          const file = path.join(dir, 'blob');
          await getBlob(this, d, file);
          return { path: file, done };
        } catch (err) {
          done();
          throw err;
        }
      },
    };
  }
}
