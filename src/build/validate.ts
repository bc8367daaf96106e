// Checks that a compiled module is a proxy-wasm plugin Envoy will load,
// before any Envoy, registry or cluster sees it. The rules are those of
// Envoy's Wasm host (proxy-wasm-cpp-host): it recognises the ABI by one
// marker export, needs the module's memory and an allocator, and links each
// function import only to a host function it registered under that exact
// module and name (some of them only for one ABI marker). host-abi.ts holds
// that table and the host functions of other proxies Envoy lacks.

import {
  ABI_MARKERS,
  HOST_ABI_ENVOY_VERSION,
  WASI_FUNCTIONS_MISSING,
  WASI_MODULES,
  abisProviding,
  envoyProvides,
  foreignHostsOf,
  type AbiMarker,
} from './host-abi.js';

export { ABI_MARKERS } from './host-abi.js';

const ALLOCATORS = ['proxy_on_memory_allocate', 'malloc'];
const ENVOY = `Envoy ${HOST_ABI_ENVOY_VERSION}`;

export interface ModuleInfo {
  abi: string;
  allocator: string;
  exports: string[];
  imports: string[];
  /** The imports refused because Envoy would not link them ("module.name"). */
  unresolvedImports?: string[];
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

  // With exactly one marker the imports are checked against what Envoy
  // registers for that ABI; otherwise (already a problem above) against any ABI,
  // so a missing marker is not reported again as a list of missing imports.
  const abi: AbiMarker | undefined = markers.length === 1 ? markers[0] : undefined;
  const unresolved: string[] = [];
  for (const imp of imports) {
    const problem = importProblem(imp, abi);
    if (problem) {
      problems.push(problem);
      unresolved.push(`${imp.module}.${imp.name}`);
    }
  }

  const info: ModuleInfo = {
    abi: markers[0] ?? '',
    allocator: allocator ?? '',
    exports: exportNames,
    imports: imports.map((i) => `${i.module}.${i.name}`),
    unresolvedImports: unresolved,
  };
  return { ok: problems.length === 0, problems, info };
}

/** Why Envoy would not link this import, as one line, or undefined if it would. */
function importProblem(imp: WebAssembly.ModuleImportDescriptor, abi: AbiMarker | undefined): string | undefined {
  const full = `${imp.module}.${imp.name}`;
  // Envoy's V8 and Wasmtime runtimes create an imported memory or table themselves, whatever its name.
  if (imp.kind === 'memory' || imp.kind === 'table') return undefined;
  if (imp.kind === 'global') {
    return `imports the global ${full}, which Envoy does not provide (it provides no globals); define it inside the module`;
  }

  const providing = abisProviding(imp.name);
  if (imp.module === 'env') {
    if (abi ? envoyProvides('env', imp.name, abi) : providing.length > 0) return undefined;
    if (imp.name === 'abort') {
      return 'imports env.abort, which Envoy does not provide: compile with `--use abort=abort_proc_exit` (the SDK\'s abort handler)';
    }
    if (providing.length > 0) {
      return `imports ${full}, which ${ENVOY} provides only to modules that export ${providing.join(' or ')} (this one exports ${abi}); remove the call or build the plugin for that ABI`;
    }
    const foreign = foreignHostsOf(imp.name);
    if (foreign.length > 0) {
      const hosts = foreign.map((h) => h.host).join(' and ');
      return `imports ${full}, a host function of ${hosts} that ${ENVOY} does not provide; ${foreign[0].advice}`;
    }
    return imp.name.startsWith('proxy_')
      ? `imports ${full}, a host function ${ENVOY} does not provide (it is not in proxy-wasm ABI ${abiList()} as Envoy implements it); remove the call or use an SDK written for Envoy`
      : `imports ${full}, which Envoy does not provide (its env module holds only the proxy_* host calls, envoy_resolve_dns and two emscripten helpers); remove whatever needs it`;
  }

  if (WASI_MODULES.includes(imp.module)) {
    if (envoyProvides(imp.module, imp.name, abi ?? ABI_MARKERS[0])) return undefined;
    return WASI_FUNCTIONS_MISSING.includes(imp.name)
      ? `imports ${full}, a WASI function ${ENVOY} does not implement; remove the call (or whatever library code needs it)`
      : `imports ${full}, which is not a WASI preview1 function Envoy provides; remove the call`;
  }

  return `imports ${full}, which Envoy does not provide (it links imports only from env and ${WASI_MODULES.join('/')}); remove whatever needs it`;
}

function abiList(): string {
  return ABI_MARKERS.map((m) => m.replace('proxy_abi_version_', '').replace(/_/g, '.')).join('/');
}
