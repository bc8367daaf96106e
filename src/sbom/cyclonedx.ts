// The SBOM of plugin.wasm: what went into the module, as a CycloneDX 1.6 JSON
// document. Pure: it takes what the toolchain and the lockfile say and
// returns bytes; nothing here reads the clock, the disk or the environment,
// so the same module, lockfile and commit always give the same bytes (and so
// the same digest once it is attached to the image in the registry).
//
// CycloneDX rather than SPDX because its npm conventions are the ones tools
// already read: a component per package with its purl (pkg:npm/…), its
// integrity as a hash, npm scopes as `group`, and the `cdx:npm:package:development`
// property for dev-only packages. The module itself is `metadata.component`,
// with its sha256; the compiler and the SDK are marked with a property so a
// reader finds them without knowing npm package names.
import { createHash } from 'node:crypto';

export const SBOM_MEDIA_TYPE = 'application/vnd.cyclonedx+json';
export const SBOM_SPEC_VERSION = '1.6';
/** This action's version, as the SBOM's tool (a unit test checks it against package.json). */
export const ACTION_VERSION = '0.1.0';
export const ACTION_NAME = 'asm-wasm-action';

export interface SbomPackage {
  name: string;
  version: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
}

export interface SbomInput {
  /** The built module. */
  module: {
    /** The plugin's package.json name; the file name when it has none. */
    name: string;
    /** The plugin's package.json version, if any. */
    version?: string;
    /** Hex sha256 of plugin.wasm. */
    sha256: string;
    size?: number;
  };
  /** The AssemblyScript compiler that built it (may differ from the lockfile's when `assemblyscript-version` overrides it). */
  compilerVersion: string;
  /** Names of the proxy-wasm SDK packages among the plugin's dependencies (empty: the plugin carries its own ABI layer). */
  sdks: string[];
  /** The plugin's direct dependencies as locked: name → version. */
  direct: Record<string, string>;
  /** Every package the lockfile installs. */
  packages: SbomPackage[];
  /** The lockfile: its file name, package manager and format version. */
  lockfile: { file: string; manager: string; version: string };
  /** Commit time (RFC 3339): the document's timestamp. Omitted when unknown, never "now". */
  created?: string;
  /** Repository URL and commit the module was built from. */
  source?: string;
  revision?: string;
}

interface Hash {
  alg: string;
  content: string;
}
interface Property {
  name: string;
  value: string;
}
interface Component {
  type: 'application' | 'library';
  'bom-ref': string;
  group?: string;
  name: string;
  version?: string;
  hashes?: Hash[];
  purl?: string;
  externalReferences?: Array<{ type: string; url: string }>;
  properties?: Property[];
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: string;
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp?: string;
    tools: { components: Component[] };
    component: Component;
    properties?: Property[];
  };
  components: Component[];
  dependencies: Array<{ ref: string; dependsOn: string[] }>;
}

/** Role properties: what a reader looks for to find the compiler and the SDK. */
export const ROLE_PROPERTY = 'asm-wasm:role';
const DEV_PROPERTY = 'cdx:npm:package:development';

/**
 * The package URL of an npm package (purl spec, npm type): the scope, with
 * its "@" percent-encoded, is the namespace; name and version are
 * percent-encoded as purl components.
 */
export function npmPurl(name: string, version: string): string {
  const enc = (s: string) => encodeURIComponent(s);
  const slash = name.startsWith('@') ? name.indexOf('/') : -1;
  const path = slash > 0 ? `${enc(name.slice(0, slash))}/${enc(name.slice(slash + 1))}` : enc(name);
  return `pkg:npm/${path}@${enc(version)}`;
}

const SRI_ALGORITHMS: Record<string, string> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

/** A lockfile's integrity ("sha512-<base64>", possibly several) as CycloneDX hashes (hex). */
export function sriHashes(integrity: string | undefined): Hash[] {
  if (!integrity) return [];
  const out: Hash[] = [];
  for (const part of integrity.trim().split(/\s+/)) {
    const m = /^(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/=]+)$/.exec(part);
    if (!m) continue;
    const hex = Buffer.from(m[2], 'base64').toString('hex');
    if (hex) out.push({ alg: SRI_ALGORITHMS[m[1]], content: hex });
  }
  return out;
}

/** A name-based (version 5) UUID: the same content always gets the same serial number. */
export function uuidV5(name: string, namespace = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function packageComponent(p: SbomPackage, roles: string[]): Component {
  const purl = npmPurl(p.name, p.version);
  const slash = p.name.startsWith('@') ? p.name.indexOf('/') : -1;
  // Key order is the document's order: written once, it is hashed and pushed.
  const c: Component = {
    type: 'library',
    'bom-ref': purl,
    ...(slash > 0 ? { group: p.name.slice(0, slash) } : {}),
    name: slash > 0 ? p.name.slice(slash + 1) : p.name,
    version: p.version,
  };
  const hashes = sriHashes(p.integrity);
  if (hashes.length) c.hashes = hashes;
  c.purl = purl;
  if (p.resolved && /^https?:\/\//.test(p.resolved)) c.externalReferences = [{ type: 'distribution', url: p.resolved }];
  const properties: Property[] = roles.map((r) => ({ name: ROLE_PROPERTY, value: r }));
  if (p.dev) properties.push({ name: DEV_PROPERTY, value: 'true' });
  if (properties.length) c.properties = properties;
  return c;
}

export function buildSbom(input: SbomInput): CycloneDxBom {
  const sha256 = input.module.sha256.replace(/^sha256:/, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`the module's sha256 "${input.module.sha256}" is not 64 hex digits`);
  const packages = [...input.packages];
  // The compiler that built the module, even when an input chose another version than the lockfile's.
  if (!packages.some((p) => p.name === 'assemblyscript' && p.version === input.compilerVersion)) {
    packages.push({ name: 'assemblyscript', version: input.compilerVersion });
  }
  packages.sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
  const roles = (p: SbomPackage): string[] => [
    ...(p.name === 'assemblyscript' && p.version === input.compilerVersion ? ['compiler'] : []),
    ...(input.sdks.includes(p.name) && input.direct[p.name] === p.version ? ['sdk'] : []),
  ];
  const components = packages.map((p) => packageComponent(p, roles(p)));

  const moduleRef = `wasm:sha256:${sha256}`;
  const module: Component = { type: 'application', 'bom-ref': moduleRef, name: input.module.name };
  if (input.module.version) module.version = input.module.version;
  module.hashes = [{ alg: 'SHA-256', content: sha256 }];
  if (input.source) module.externalReferences = [{ type: 'vcs', url: input.source }];
  module.properties = [
    { name: 'asm-wasm:file', value: 'plugin.wasm' },
    ...(input.module.size !== undefined ? [{ name: 'asm-wasm:size', value: String(input.module.size) }] : []),
    ...(input.revision ? [{ name: 'asm-wasm:revision', value: input.revision }] : []),
    // Said outright, so "no SDK component" is not read as "SDK unknown".
    ...(input.sdks.length === 0 ? [{ name: 'asm-wasm:sdk', value: 'none from npm: the plugin carries its own proxy-wasm ABI layer' }] : []),
  ];

  // The module depends on the plugin's direct dependencies as locked, and on the compiler that built it.
  const direct = Object.entries(input.direct)
    .filter(([name]) => name !== 'assemblyscript')
    .map(([name, version]) => npmPurl(name, version));
  const dependsOn = [...new Set([npmPurl('assemblyscript', input.compilerVersion), ...direct])]
    .filter((ref) => components.some((c) => c['bom-ref'] === ref))
    .sort();

  const bom: CycloneDxBom = {
    bomFormat: 'CycloneDX',
    specVersion: SBOM_SPEC_VERSION,
    serialNumber: '',
    version: 1,
    metadata: {
      ...(input.created ? { timestamp: input.created } : {}),
      tools: { components: [{ type: 'application', 'bom-ref': `${ACTION_NAME}@${ACTION_VERSION}`, name: ACTION_NAME, version: ACTION_VERSION }] },
      component: module,
      properties: [
        { name: 'asm-wasm:lockfile', value: input.lockfile.file },
        { name: 'asm-wasm:package-manager', value: input.lockfile.manager },
        { name: 'asm-wasm:lockfile-version', value: input.lockfile.version },
      ],
    },
    components,
    dependencies: [{ ref: moduleRef, dependsOn }],
  };
  // The serial number names this content: the document without it, hashed.
  bom.serialNumber = `urn:uuid:${uuidV5(`${ACTION_NAME}:sbom:${JSON.stringify(bom)}`)}`;
  return bom;
}

/** The document as it is written and pushed: two-space JSON and a final newline. */
export function sbomBytes(bom: CycloneDxBom): Buffer {
  return Buffer.from(`${JSON.stringify(bom, null, 2)}\n`);
}
