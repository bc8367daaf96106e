// The push stage: package plugin.wasm as an OCI image, push it (or write an
// OCI layout when no registry is given), and prove the result loads the way
// Istio will load it before reporting success.
//
// Order of operations against a registry, so a tag never names a half-pushed
// image: check version tags -> upload every missing blob -> confirm every
// blob -> PUT the manifest by digest -> read it back by digest through the
// gate -> attach the SBOM (an OCI 1.1 referrer of the image) -> only then
// PUT it under each tag.
import { resolve as resolvePath } from 'node:path';
import { log } from '../log.js';
import { UserError } from '../errors.js';
import { buildImageFromFile, normaliseCreated, sha256Digest, uniqueBlobs, type BuiltImage, type ImageFormat } from './image.js';
import { gate, layoutSource } from './gate.js';
import { writeLayout } from './layout.js';
import type { RetryPolicy } from '../net/index.js';
import { artifactManifest, attachReferrer, checkTagMoves, openRepository, parseRegistry, setTags, validateRepository, validateTag, type AttachResult } from './registry/index.js';

export type { ImageFormat } from './image.js';
export { IMAGE_FORMATS } from './image.js';

export interface PushOptions {
  /** The built module. */
  wasmPath: string;
  /** Hex sha256 (optionally "sha256:"-prefixed) the module must have. */
  wasmSha256: string;
  /** "host[:port]"; without it the image is written to `layoutDir`. */
  registry?: string;
  /** e.g. "team/header-plugin"; required with `registry`. */
  repository?: string;
  tags: string[];
  format?: ImageFormat;
  username?: string;
  password?: string;
  dockerConfigPath?: string;
  /** PEM CA certificate to trust for the registry (on top of the system ones). */
  caFile?: string;
  /** Allow plain HTTP / unverified TLS to a non-loopback registry. */
  insecure?: boolean;
  /** Move version tags (v1.2.3, 1.2) that already name another image. */
  force?: boolean;
  /** Written to org.opencontainers.image.source. */
  source?: string;
  /** Written to org.opencontainers.image.revision. */
  revision?: string;
  /** Commit time (RFC 3339) for `created`. */
  created?: string;
  /**
   * A document to attach to the image as an OCI 1.1 artifact (the SBOM):
   * pushed after the image passed the gate and before any tag is set.
   * Ignored for an OCI layout (the stage writes it beside the layout).
   */
  attach?: { artifactType: string; mediaType: string; data: Buffer; fileName: string };
  /** Where to write the OCI layout when there is no registry (default .asm-wasm/oci-layout). */
  layoutDir?: string;
  /** Tuning, mainly for tests. */
  retry?: Partial<RetryPolicy>;
  chunkThresholdBytes?: number;
  chunkSizeBytes?: number;
  timeoutMs?: number;
}

export interface PushResult {
  /** "host/repo@sha256:…" (for a layout: "<dir>@sha256:…"). */
  imageRef: string;
  /** The image manifest's digest (never an index). */
  digest: string;
  /** "oci://host/repo@sha256:…", as a WasmPlugin's url (for a layout: "oci-layout://<dir>@sha256:…"). */
  url: string;
  tags: string[];
  /** Blobs sent (or written) this time. */
  uploaded: number;
  /** Blobs already there. */
  skipped: number;
  /** The layout directory, when no registry was given. */
  ociLayout?: string;
  /** The attached document's manifest, when `attach` was given and pushed. */
  attached?: AttachResult;
}

export const DEFAULT_LAYOUT_DIR = '.asm-wasm/oci-layout';

function uniqueTags(tags: string[]): string[] {
  const out: string[] = [];
  for (const raw of tags) {
    const t = raw.trim();
    if (!t || out.includes(t)) continue;
    validateTag(t);
    out.push(t);
  }
  return out;
}

export async function push(options: PushOptions): Promise<PushResult> {
  // The module is read once, as a stream: hashed and packed as it is read (only the layer is held whole).
  let image: BuiltImage;
  try {
    image = await buildImageFromFile(options.wasmPath, {
      format: options.format ?? 'compat',
      source: options.source,
      revision: options.revision,
      created: options.created,
    });
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`could not read the plugin ${options.wasmPath}: ${(err as Error).message}`);
  }
  const builtSha = image.wasmSha256;
  const expected = options.wasmSha256.replace(/^sha256:/, '').toLowerCase();
  if (expected !== builtSha) {
    throw new UserError(`${options.wasmPath} has sha256 ${builtSha}, but the build produced ${expected}: it changed after it was built and tested`);
  }
  const tags = uniqueTags(options.tags);
  const digest = image.manifestDigest;
  log.info(`image ${digest} (${image.format}, ${image.layers.length} layer(s), plugin sha256 ${builtSha})`);

  if (!options.registry) {
    const dir = resolvePath(options.layoutDir ?? DEFAULT_LAYOUT_DIR);
    const { written, skipped } = await writeLayout(dir, image, tags);
    await gate(layoutSource(dir), digest, builtSha);
    log.info(`wrote OCI layout ${dir} (${written} blob(s) written, ${skipped} already there)`);
    return {
      imageRef: `${dir}@${digest}`,
      digest,
      url: `oci-layout://${dir}@${digest}`,
      tags,
      uploaded: written,
      skipped,
      ociLayout: dir,
    };
  }

  const address = parseRegistry(options.registry);
  if (!options.repository) throw new UserError(`a repository is needed to push to ${address.host} (e.g. my-team/header-plugin)`);
  validateRepository(options.repository);
  const client = await openRepository({
    registry: options.registry,
    repository: options.repository,
    username: options.username,
    password: options.password,
    dockerConfigPath: options.dockerConfigPath,
    caFile: options.caFile,
    insecure: options.insecure,
    retry: options.retry,
    chunkThresholdBytes: options.chunkThresholdBytes,
    chunkSizeBytes: options.chunkSizeBytes,
    timeoutMs: options.timeoutMs,
  });
  const ref = `${address.host}/${client.repository}`;
  try {

    await checkTagMoves(client, tags, digest, !!options.force, (line) => log.info(line));

    let uploaded = 0;
    let skipped = 0;
    const blobs = uniqueBlobs(image);
    for (const b of blobs) {
      if (await client.blobExists(b.digest)) {
        skipped++;
        log.info(`blob ${b.digest} already in ${ref}`);
        continue;
      }
      await client.uploadBlob(b);
      uploaded++;
      log.info(`uploaded blob ${b.digest} (${b.size} bytes)`);
    }
    for (const b of blobs) {
      if (!(await client.blobExists(b.digest))) {
        throw new UserError(`registry ${address.host} does not show blob ${b.digest} after it was uploaded; nothing was tagged`);
      }
    }

    await client.putManifest(digest, image.manifest, image.mediaType);
    const checked = await gate(client.source(), digest, builtSha);
    log.info(`read back ${ref}@${digest}: loads as a ${checked.variant} image, plugin.wasm matches`);

    let attached: AttachResult | undefined;
    if (options.attach) {
      const a = options.attach;
      const doc = { mediaType: a.mediaType, digest: sha256Digest(a.data), size: a.data.length, data: a.data, annotations: { 'org.opencontainers.image.title': a.fileName } };
      const created = options.created ? normaliseCreated(options.created) : undefined;
      const artifact = artifactManifest({ mediaType: image.mediaType, digest, size: image.manifest.length }, a.artifactType, [doc], created ? { 'org.opencontainers.image.created': created } : {});
      attached = await attachReferrer(client, artifact, digest, (line) => log.info(line));
      // Read back by digest, as a reader would fetch it.
      const back = await client.getManifest(artifact.digest);
      if (!back.equals(artifact.manifest)) throw new UserError(`registry ${address.host} returned other bytes for ${ref}@${artifact.digest} than were pushed`);
      if (!(await client.getBlob(doc.digest)).equals(a.data)) throw new UserError(`registry ${address.host} returned other bytes for the ${a.fileName} blob ${doc.digest} than were pushed`);
    }

    await setTags(client, tags, { manifest: image.manifest, mediaType: image.mediaType, digest }, (line) => log.info(line));

    return {
      imageRef: `${ref}@${digest}`,
      digest,
      url: `oci://${ref}@${digest}`,
      tags,
      uploaded,
      skipped,
      attached,
    };
  } finally {
    client.close();
  }
}

/**
 * Splits an image name ("registry.example.com:5000/team/plugin") into the
 * registry and the repository. A first part without a dot, a colon or
 * "localhost" is a Docker Hub repository ("team/plugin" is docker.io/team/plugin).
 */
export function splitImage(image: string): { registry: string; repository: string } {
  const name = image.trim().replace(/^oci:\/\//, '');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(name);
  if (scheme) {
    throw new UserError(
      `input \`image\`: "${image}" starts with ${scheme[0]}; give host/repository without a scheme (e.g. ${name.slice(scheme[0].length) || 'registry.example.com/team/plugin'}); a registry that speaks plain HTTP needs registry-insecure: true unless it is on loopback`,
    );
  }
  if (/[@]|:[^/]*$/.test(name.split('/').slice(1).join('/') || '')) {
    throw new UserError(`input \`image\`: "${image}" must name a repository without a tag or digest (tags go in \`tags\`), e.g. registry.example.com/team/header-authorization`);
  }
  const slash = name.indexOf('/');
  const first = slash > 0 ? name.slice(0, slash) : '';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const port = /:(\d+)$/.exec(first)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
      throw new UserError(`input \`image\`: the registry port ${port} in "${image}" is not a port number (1 to 65535)`);
    }
    return { registry: first, repository: name.slice(slash + 1) };
  }
  return { registry: 'docker.io', repository: name.includes('/') ? name : `library/${name}` };
}
