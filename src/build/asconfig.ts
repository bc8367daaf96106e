// asconfig.json, as the compiler reads it: `extends` chains to a base file
// (paths relative to the file that names them), `entries` lists the sources,
// `options` applies to every target and `targets.<name>` over them. A value
// in a file wins over the file it extends. The build stage reads it only to
// know the entries and which .wasm a target writes; the compiler itself reads
// the file for everything else.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';

export const ASCONFIG = 'asconfig.json';

interface RawConfig {
  extends?: string;
  entries?: string[];
  options?: Record<string, unknown>;
  targets?: Record<string, Record<string, unknown>>;
}

export interface ResolvedTarget {
  /** The config file read first, and the files it extends, leaf first. */
  files: string[];
  /** Every target name any file in the chain declares. */
  targets: string[];
  /** Entry files, absolute. */
  entries: string[];
  /** The .wasm this target writes, absolute, when the configuration names one. */
  wasmFile?: string;
}

function readConfig(file: string, from: string): RawConfig {
  if (!fs.existsSync(file)) {
    throw new UserError(
      `${from} extends ${file}, which does not exist${file.includes('node_modules') ? '; the toolchain stage installs the package it is in: run it first (input toolchain: true)' : ''}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); fix the compiler configuration`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UserError(`${file} must hold a JSON object`);
  return parsed as RawConfig;
}

/** Which option names the .wasm output: outFile on 0.20+, binaryFile before (outFile there only when it ends in .wasm). */
function wasmOf(opts: Record<string, unknown> | undefined, outFileLine: boolean): string | undefined {
  if (!opts) return undefined;
  const out = typeof opts.outFile === 'string' ? opts.outFile : undefined;
  const bin = typeof opts.binaryFile === 'string' ? opts.binaryFile : undefined;
  if (outFileLine) return out;
  return bin ?? (out?.endsWith('.wasm') ? out : undefined);
}

/**
 * Resolves `target` of the configuration at `file`. `outFileLine` says
 * whether the compiler names its .wasm with outFile (0.20+) or binaryFile.
 */
export function resolveTarget(file: string, target: string, outFileLine: boolean): ResolvedTarget {
  const files: string[] = [];
  const targets = new Set<string>();
  let entries: string[] | undefined;
  let wasmFile: string | undefined;
  let current = path.resolve(file);
  let from = 'the build';
  for (let depth = 0; depth < 10; depth++) {
    if (files.includes(current)) throw new UserError(`${current} extends itself (through ${files.join(' → ')}); break the cycle`);
    const cfg = readConfig(current, from);
    files.push(current);
    const dir = path.dirname(current);
    for (const t of Object.keys(cfg.targets ?? {})) targets.add(t);
    if (!entries && Array.isArray(cfg.entries)) entries = cfg.entries.map((e) => path.resolve(dir, e));
    if (!wasmFile) {
      const w = wasmOf(cfg.targets?.[target], outFileLine) ?? wasmOf(cfg.options, outFileLine);
      if (w) wasmFile = path.resolve(dir, w);
    }
    if (!cfg.extends) break;
    from = current;
    current = path.resolve(dir, cfg.extends);
  }
  return { files, targets: [...targets], entries: entries ?? [], wasmFile };
}
