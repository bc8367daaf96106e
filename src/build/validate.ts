// Checks that a compiled module is a proxy-wasm plugin Envoy will load,
// before any Envoy, registry or cluster sees it. The rules are those of
// Envoy's Wasm host (proxy-wasm-cpp-host): it recognises the ABI by one
// marker export, needs the module's memory and an allocator, and provides
// imports only from `env` (the proxy_* host calls) and the WASI modules.

export const ABI_MARKERS = ['proxy_abi_version_0_1_0', 'proxy_abi_version_0_2_0', 'proxy_abi_version_0_2_1'] as const;
const ALLOCATORS = ['proxy_on_memory_allocate', 'malloc'];
const WASI_MODULES = ['wasi_unstable', 'wasi_snapshot_preview1'];

export interface ModuleInfo {
  abi: string;
  allocator: string;
  exports: string[];
  imports: string[];
}

export interface ValidationResult {
  ok: boolean;
  problems: string[];
  info?: ModuleInfo;
}

/** Validates module bytes. Never throws: problems are listed for the caller to report. */
export async function validateModule(bytes: Uint8Array): Promise<ValidationResult> {
  const problems: string[] = [];
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    return { ok: false, problems: [`not a valid WebAssembly module: ${(err as Error).message}`] };
  }
  const exports = WebAssembly.Module.exports(module);
  const imports = WebAssembly.Module.imports(module);
  const exportNames = exports.map((e) => e.name);

  const markers = ABI_MARKERS.filter((m) => exportNames.includes(m));
  const otherMarkers = exportNames.filter((n) => n.startsWith('proxy_abi_version_') && !(ABI_MARKERS as readonly string[]).includes(n));
  if (markers.length === 0) {
    problems.push(
      otherMarkers.length > 0
        ? `exports ${otherMarkers.join(', ')}, an ABI version Envoy does not know (it knows ${ABI_MARKERS.join(', ')})`
        : `exports no proxy-wasm ABI marker (${ABI_MARKERS.join(', ')}): this is not a proxy-wasm plugin; export the SDK's entry points (\`export * from "@solo-io/proxy-runtime/proxy"\`)`,
    );
  } else if (markers.length > 1) {
    problems.push(`exports several ABI markers (${markers.join(', ')}); Envoy needs exactly one`);
  }

  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    problems.push('exports no `memory`; Envoy reads and writes plugin data through it');
  }
  const allocator = ALLOCATORS.find((a) => exports.some((e) => e.name === a && e.kind === 'function'));
  if (!allocator) {
    problems.push('exports no allocator (`proxy_on_memory_allocate` or `malloc`); Envoy cannot pass data to the plugin');
  }

  for (const imp of imports) {
    const ok = (imp.module === 'env' && imp.name.startsWith('proxy_')) || WASI_MODULES.includes(imp.module);
    if (ok) continue;
    if (imp.module === 'env' && imp.name === 'abort') {
      problems.push(
        'imports env.abort, which Envoy does not provide: compile with `--use abort=abort_proc_exit` (the SDK\'s abort handler)',
      );
    } else {
      problems.push(`imports ${imp.module}.${imp.name}, which Envoy does not provide (only env.proxy_* and ${WASI_MODULES.join('/')})`);
    }
  }

  const info: ModuleInfo = {
    abi: markers[0] ?? '',
    allocator: allocator ?? '',
    exports: exportNames,
    imports: imports.map((i) => `${i.module}.${i.name}`),
  };
  return { ok: problems.length === 0, problems, info };
}
