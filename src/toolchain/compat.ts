// Which compiler each line of AssemblyScript is, what its command line looks
// like, and which compiler each proxy-wasm SDK builds with. Flags are chosen
// from these facts, never by trying one and then another.
//
// From each version's own option table (cli/asc.json, or `asc --help` from 0.20):
//   0.14–0.17  -b/--binaryFile names the .wasm; --runtime full|half|stub|none (default full)
//   0.18–0.19  -b/--binaryFile names the .wasm; --runtime incremental|minimal|stub (default incremental)
//   0.20+      -o/--outFile names the .wasm; -b is --bindings; runtimes as in 0.18
// Every line from 0.14 on reads asconfig.json, and `--target` defaults to "release".
import semver from 'semver';
import { UserError } from '../errors.js';

export type CompilerLine = 'binaryFile-full' | 'binaryFile-incremental' | 'outFile';

/** Oldest compiler this action builds with. */
export const OLDEST_COMPILER = '0.14.0';

export function compilerLine(version: string): CompilerLine {
  const v = semver.coerce(version)?.version;
  if (!v) throw new UserError(`"${version}" is not an AssemblyScript version; pin an exact version such as 0.28.20`);
  if (semver.lt(v, OLDEST_COMPILER)) {
    throw new UserError(`AssemblyScript ${version} is older than ${OLDEST_COMPILER}, the oldest this action builds with; move the plugin to 0.28 (see the README's "Moving an old plugin")`);
  }
  if (semver.lt(v, '0.18.0')) return 'binaryFile-full';
  if (semver.lt(v, '0.20.0')) return 'binaryFile-incremental';
  return 'outFile';
}

/** The flag that names the .wasm output on this compiler. */
export function outputFlag(version: string): string {
  return compilerLine(version) === 'outFile' ? '--outFile' : '--binaryFile';
}

export interface SdkFacts {
  /** The npm package. */
  name: string;
  /** Display name for messages. */
  title: string;
  /** Compiler versions the SDK builds with (a semver range). */
  compiler: string;
  /** The `--use abort=…` alias that routes AssemblyScript's abort to the SDK, when the build runs asc itself. */
  abort?: string;
  /** Other packages the SDK needs beside it, on the compilers of `compiler`. */
  needs?: Array<{ name: string; compiler: string }>;
  /** How to move off the SDK when the compiler does not fit. */
  fix: string;
}

/**
 * The proxy-wasm SDKs for AssemblyScript on npm, with the compiler each is
 * built and tested with (from their package.json). An SDK not listed here is
 * checked against the `assemblyscript` range in its own peerDependencies.
 */
export const KNOWN_SDKS: SdkFacts[] = [
  {
    name: '@solo-io/proxy-runtime',
    title: '@solo-io/proxy-runtime',
    compiler: '>=0.14.0 <0.15.0',
    abort: 'abort_proc_exit',
    fix: 'pin assemblyscript 0.14.13 for this SDK, or move the plugin to AssemblyScript 0.28 with @gcoredev/proxy-wasm-sdk-as (see the README)',
  },
  {
    name: '@gcoredev/proxy-wasm-sdk-as',
    title: '@gcoredev/proxy-wasm-sdk-as',
    // Its package.json builds it with ^0.28.9; our fixtures build and pass in
    // Envoy with it on 0.19.23, 0.24.1 and 0.28.20. From 0.20 on the compiler
    // has no WASI of its own and the SDK's logging needs wasi-shim.
    compiler: '>=0.19.0 <0.29.0',
    abort: 'abort_proc_exit',
    needs: [{ name: '@assemblyscript/wasi-shim', compiler: '>=0.20.0' }],
    fix: 'pin assemblyscript 0.28.20 (`npm install --save-exact --save-dev assemblyscript@0.28.20`)',
  },
];

export interface SdkCheck {
  sdk: string;
  sdkVersion: string;
  /** The compiler range it needs. */
  compiler: string;
  ok: boolean;
}

/**
 * Checks the plugin's SDKs against the compiler before anything is installed
 * or compiled. `peers` gives the assemblyscript peer range of SDKs that are
 * not in the table (read from node_modules after an install).
 */
export function checkSdks(
  direct: Record<string, string>,
  compilerVersion: string,
  peers: Record<string, string> = {},
): { checks: SdkCheck[]; problems: string[] } {
  const checks: SdkCheck[] = [];
  const problems: string[] = [];
  for (const [name, version] of Object.entries(direct)) {
    const known = KNOWN_SDKS.find((s) => s.name === name);
    const range = known?.compiler ?? peers[name];
    if (!range) continue;
    const ok = semver.satisfies(compilerVersion, range, { includePrerelease: true });
    checks.push({ sdk: name, sdkVersion: version, compiler: range, ok });
    if (!ok) {
      problems.push(
        `${name} ${version} builds with AssemblyScript ${range}, but the plugin's compiler is ${compilerVersion}; ${known?.fix ?? `pin an assemblyscript that satisfies ${range}, or use an SDK release made for ${compilerVersion}`}`,
      );
    }
    for (const need of known?.needs ?? []) {
      if (need.name in direct || !semver.satisfies(compilerVersion, need.compiler)) continue;
      problems.push(
        `${name} needs ${need.name} beside it on AssemblyScript ${compilerVersion}, and the plugin does not depend on it; add it: \`npm install --save-dev ${need.name}\` and extend its asconfig.json`,
      );
    }
  }
  return { checks, problems };
}

/** The `--use abort=…` value for a plugin built without configuration, from the SDK it uses. */
export function abortAlias(direct: Record<string, string>): string | undefined {
  return KNOWN_SDKS.find((s) => s.abort && s.name in direct)?.abort;
}
