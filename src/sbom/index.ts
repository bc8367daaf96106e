// The SBOM of a plugin directory: its lockfile read with the toolchain's own
// reader, the SDKs it depends on, the compiler that built the module, laid
// into the CycloneDX builder (cyclonedx.ts). No runner calls here: the push
// stage writes the file and attaches it to the image.
import * as path from 'node:path';
import { KNOWN_SDKS } from '../toolchain/compat.js';
import { lockPackages, readLock, readPackageJson } from '../toolchain/lockfile.js';
import { buildSbom, sbomBytes, type CycloneDxBom } from './cyclonedx.js';

export { ACTION_VERSION, ROLE_PROPERTY, SBOM_MEDIA_TYPE, SBOM_SPEC_VERSION, buildSbom, npmPurl, sbomBytes, type CycloneDxBom, type SbomInput } from './cyclonedx.js';

/** The file name the SBOM is written under (CycloneDX's recommended `.cdx.json`). */
export const SBOM_FILE_NAME = 'plugin.cdx.json';

export interface PluginSbomOptions {
  pluginDir: string;
  /** Hex sha256 of plugin.wasm. */
  wasmSha256: string;
  wasmSize?: number;
  /** The compiler that built the module; default the version the lockfile pins. */
  compilerVersion?: string;
  /** Extra SDK names (the toolchain's peer-range findings); the known SDKs are always recognised. */
  sdks?: string[];
  created?: string;
  source?: string;
  revision?: string;
}

export interface PluginSbom {
  document: CycloneDxBom;
  /** The exact bytes written and pushed. */
  bytes: Buffer;
  /** How many packages it lists, the compiler included. */
  packages: number;
  compilerVersion: string;
  sdks: string[];
}

export function pluginSbom(options: PluginSbomOptions): PluginSbom {
  const pkg = readPackageJson(options.pluginDir);
  const lock = readLock(options.pluginDir);
  const compilerVersion = options.compilerVersion ?? lock.assemblyscript;
  const sdkNames = new Set([...KNOWN_SDKS.map((s) => s.name), ...(options.sdks ?? [])]);
  const sdks = Object.keys(lock.direct).filter((n) => sdkNames.has(n)).sort();
  const document = buildSbom({
    module: { name: pkg.name || 'plugin.wasm', version: pkg.version, sha256: options.wasmSha256, size: options.wasmSize },
    compilerVersion,
    sdks,
    direct: lock.direct,
    packages: lockPackages(options.pluginDir),
    lockfile: { file: path.basename(lock.file), manager: lock.manager, version: lock.lockfileVersion },
    created: options.created,
    source: options.source,
    revision: options.revision,
  });
  return { document, bytes: sbomBytes(document), packages: document.components.length, compilerVersion, sdks };
}
