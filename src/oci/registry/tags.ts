// Tags: what a valid tag is, which tags are never moved without `force`
// (release versions), and setting tags only once the image is complete.
import { UserError } from '../../errors.js';
import type { RegistryClient } from './client.js';

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function validateTag(tag: string): void {
  if (!TAG_RE.test(tag)) {
    throw new UserError(`the tag "${tag}" is not a valid image tag: up to 128 letters, digits, _ . -, not starting with . or -`);
  }
}

/**
 * Tags that name a release (v1.2.3, 1.2.3, 1.2, 1.2.3-rc.1) and so are never
 * moved to another image without `force`. A bare major ("v1") and names such
 * as "latest" or "main" are treated as moving tags.
 */
export function isVersionTag(tag: string): boolean {
  return /^v?\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$/.test(tag);
}

/**
 * Before anything is uploaded: a version tag that already names another
 * image stops the push, unless `force` (then it is logged and moved later).
 */
export async function checkTagMoves(client: RegistryClient, tags: string[], digest: string, force: boolean, log: (line: string) => void): Promise<void> {
  for (const tag of tags) {
    if (!isVersionTag(tag)) continue;
    const current = await client.resolve(tag);
    if (current && current !== digest) {
      if (!force) {
        throw new UserError(
          `${client.ref}:${tag} already names ${current}; version tags are not moved to a different image (${digest}). Publish a new version, or set force to move the tag.`,
        );
      }
      log(`moving version tag ${tag} from ${current} (force)`);
    }
  }
}

/**
 * Once the image is complete and read back: one PUT per tag, each checked by
 * looking the tag up again. A tag that fails leaves the ones before it on the
 * new image and the ones after it where they were.
 */
export async function setTags(
  client: RegistryClient,
  tags: string[],
  image: { manifest: Buffer; mediaType: string; digest: string },
  log: (line: string) => void,
): Promise<void> {
  for (const tag of tags) {
    await client.putManifest(tag, image.manifest, image.mediaType);
    const now = await client.resolve(tag);
    if (now !== image.digest) throw new UserError(`after tagging, ${client.ref}:${tag} names ${now ?? 'nothing'} instead of ${image.digest}`);
    log(`tagged ${client.ref}:${tag}`);
  }
}
