// A small OCI distribution client, written by hand on the network layer
// (src/net): no npm package we could find pushes images, and this one needs
// only a handful of endpoints (distribution-spec "push" and "pull" by digest).
//
//   names.ts       registry addresses, repository names, the registry's error text
//   auth.ts        credentials (inputs, Docker config, helpers), challenges, tokens
//   connection.ts  the shell: scheme, auth, retries, TLS, error wording, ping
//   blobs.ts       HEAD, upload (single PUT or PATCH chunks), read back
//   manifests.ts   PUT the exact bytes, GET by digest, HEAD a tag
//   tags.ts        valid tags, version tags that are not moved, setting tags
//   referrers.ts   artifacts attached to an image (subject), the referrers tag schema
//   client.ts      RegistryClient: the connection plus those operations
//   open.ts        a client for one repository, credentials resolved, registry pinged
export { RegistryClient } from './client.js';
export { openRepository, type RepositoryOptions } from './open.js';
export { resolveCredentials, parseWwwAuthenticate } from './auth.js';
export { isLoopbackHost, parseRegistry, registryErrorText, validateRepository } from './names.js';
export { checkTagMoves, isVersionTag, setTags, validateTag } from './tags.js';
export { artifactManifest, attachReferrer, listReferrers, referrersTag, type ArtifactManifest, type AttachResult, type Descriptor } from './referrers.js';
