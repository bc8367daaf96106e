import { describe, expect, it } from 'vitest';
import {
  ABI_MARKERS,
  FOREIGN_HOSTS,
  HOST_ABI_ENVOY_VERSION,
  OTHER_ENV_FUNCTIONS,
  PROXY_FUNCTIONS_BY_ABI,
  PROXY_FUNCTIONS_EVERY_ABI,
  WASI_FUNCTIONS,
  WASI_FUNCTIONS_MISSING,
  WASI_MODULES,
  abisProviding,
  envoyProvides,
  type AbiMarker,
} from '../../src/build/host-abi.js';
import { validateModule } from '../../src/build/validate.js';
import { proxyWasmModule, wasmModule } from '../helpers/wasm.js';

/** A loadable module with this ABI marker and these "module.name" function imports. */
function moduleFor(abi: string, imports: string[]): Uint8Array {
  return wasmModule({ imports, functions: [abi, 'proxy_on_memory_allocate'], memory: true });
}

/** A module whose only content is one non-function import (kind 0x02 memory or 0x03 global). */
function nonFunctionImport(module: string, name: string, kind: 'memory' | 'global'): Uint8Array {
  const str = (s: string) => [s.length, ...Buffer.from(s)];
  const desc = kind === 'memory' ? [0x02, 0x00, 0x01] : [0x03, 0x7f, 0x00]; // memory min 1 | immutable i32 global
  const body = [1, ...str(module), ...str(name), ...desc];
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x02, body.length, ...body]);
}

describe('validateModule', () => {
  it('accepts a module with one ABI marker, memory, an allocator and proxy imports', async () => {
    const r = await validateModule(proxyWasmModule({ imports: ['wasi_snapshot_preview1.fd_write', 'wasi_unstable.proc_exit'] }));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.info?.abi).toBe('proxy_abi_version_0_2_0');
    expect(r.info?.allocator).toBe('proxy_on_memory_allocate');
    expect(r.info?.unresolvedImports).toEqual([]);
  });

  it('accepts the legacy malloc allocator', async () => {
    const r = await validateModule(wasmModule({ functions: ['proxy_abi_version_0_1_0', 'malloc'], memory: true }));
    expect(r.ok).toBe(true);
    expect(r.info?.allocator).toBe('malloc');
  });

  it.each([
    ['no ABI marker', wasmModule({ functions: ['malloc'], memory: true }), /no proxy-wasm ABI marker/],
    ['an ABI Envoy does not know', wasmModule({ functions: ['proxy_abi_version_0_3_0', 'malloc'], memory: true }), /ABI version Envoy does not know/],
    ['two ABI markers', wasmModule({ functions: ['proxy_abi_version_0_1_0', 'proxy_abi_version_0_2_1', 'malloc'], memory: true }), /several ABI markers/],
    ['no memory', wasmModule({ functions: ['proxy_abi_version_0_2_0', 'malloc'] }), /no `memory`/],
    ['no allocator', wasmModule({ functions: ['proxy_abi_version_0_2_0'], memory: true }), /no allocator/],
    ['env.abort (missing --use abort=...)', proxyWasmModule({ imports: ['env.abort'] }), /env\.abort.*--use abort=abort_proc_exit/],
    ['a foreign import', proxyWasmModule({ imports: ['js.console_log'] }), /imports js\.console_log, which Envoy does not provide/],
    ['an env import that is not a host call', proxyWasmModule({ imports: ['env.seed'] }), /imports env\.seed, which Envoy does not provide/],
  ])('rejects %s', async (_name, bytes, message) => {
    const r = await validateModule(bytes);
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(message);
  });

  it('rejects bytes that are not WebAssembly', async () => {
    const r = await validateModule(new TextEncoder().encode('FROM scratch\n'));
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/not a valid WebAssembly module/);
  });
});

describe('validateModule: imports against what Envoy registers', () => {
  it.each(ABI_MARKERS.map((abi) => [abi]))('accepts every env host function Envoy registers for %s', async (abi) => {
    const imports = [...PROXY_FUNCTIONS_EVERY_ABI, ...PROXY_FUNCTIONS_BY_ABI[abi], ...OTHER_ENV_FUNCTIONS].map((n) => `env.${n}`);
    const r = await validateModule(moduleFor(abi, imports));
    expect(r.problems).toEqual([]);
    expect(r.info?.abi).toBe(abi);
    expect(r.info?.imports).toHaveLength(imports.length);
  });

  it.each([
    ['proxy_abi_version_0_2_0', 'proxy_get_log_level', 'proxy_abi_version_0_2_1'],
    ['proxy_abi_version_0_2_1', 'proxy_clear_route_cache', 'proxy_abi_version_0_1_0'],
    ['proxy_abi_version_0_2_0', 'proxy_get_configuration', 'proxy_abi_version_0_1_0'],
    ['proxy_abi_version_0_1_0', 'proxy_continue_stream', 'proxy_abi_version_0_2_0 or proxy_abi_version_0_2_1'],
    ['proxy_abi_version_0_1_0', 'proxy_get_log_level', 'proxy_abi_version_0_2_1'],
  ])('refuses, for %s, %s (Envoy registers it only for %s)', async (abi, name, providers) => {
    const r = await validateModule(moduleFor(abi, ['env.proxy_log', `env.${name}`]));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      `imports env.${name}, which Envoy ${HOST_ABI_ENVOY_VERSION} provides only to modules that export ${providers} (this one exports ${abi}); remove the call or build the plugin for that ABI`,
    ]);
    expect(r.info?.unresolvedImports).toEqual([`env.${name}`]);
  });

  it('accepts every WASI preview1 function Envoy implements, under both module names', async () => {
    const imports = WASI_MODULES.flatMap((m) => WASI_FUNCTIONS.map((n) => `${m}.${n}`));
    expect(imports).toContain('wasi_snapshot_preview1.random_get');
    expect(imports).toContain('wasi_unstable.fd_write');
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', imports));
    expect(r.problems).toEqual([]);
  });

  it.each(['wasi_snapshot_preview1', 'wasi_unstable'])('refuses %s.proc_raise, the one WASI preview1 function Envoy does not implement', async (m) => {
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', [`${m}.fd_write`, `${m}.proc_raise`]));
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(new RegExp(`^imports ${m}\\.proc_raise, a WASI function Envoy 1\\.40 does not implement; remove the call`));
  });

  it('refuses a name in a WASI module that is no WASI function', async () => {
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', ['wasi_snapshot_preview1.proxy_log']));
    expect(r.problems).toEqual(['imports wasi_snapshot_preview1.proxy_log, which is not a WASI preview1 function Envoy provides; remove the call']);
  });

  it('refuses env.proxy_get_secret and names it as a Gcore FastEdge host function', async () => {
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', ['env.proxy_log', 'env.proxy_get_secret']));
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^imports env\.proxy_get_secret, a host function of Gcore FastEdge that Envoy 1\.40 does not provide; remove the call \(/);
    expect(r.problems[0]).not.toMatch(/\n/);
    expect(r.info?.unresolvedImports).toEqual(['env.proxy_get_secret']);
  });

  it('refuses every FastEdge-only function the Gcore SDK declares', async () => {
    const gcore = FOREIGN_HOSTS.find((h) => h.host === 'Gcore FastEdge')!;
    expect(gcore.functions).toEqual(expect.arrayContaining(['proxy_dictionary_get', 'proxy_get_secret', 'proxy_kv_store_open', 'proxy_kv_store_get']));
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', gcore.functions.map((n) => `env.${n}`)));
    expect(r.problems).toHaveLength(gcore.functions.length);
    for (const p of r.problems) expect(p).toMatch(/a host function of Gcore FastEdge that Envoy 1\.40 does not provide/);
  });

  it.each([
    ['env.proxy_redis_call', /a host function of Higress .* that Envoy 1\.40 does not provide/],
    ['env.proxy_resume_http_request', /a host function of MOSN \(proxy-wasm-go-host\) that Envoy 1\.40 does not provide/],
    ['env.proxy_made_up_call', /^imports env\.proxy_made_up_call, a host function Envoy 1\.40 does not provide \(it is not in proxy-wasm ABI 0\.1\.0\/0\.2\.0\/0\.2\.1/],
    ['foo.bar', /^imports foo\.bar, which Envoy does not provide \(it links imports only from env and wasi_snapshot_preview1\/wasi_unstable\)/],
  ])('refuses %s', async (imp, message) => {
    const r = await validateModule(moduleFor('proxy_abi_version_0_2_1', [imp]));
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(message);
  });

  it('refuses a global import and accepts a memory import, as Envoy does', async () => {
    const g = await validateModule(nonFunctionImport('env', 'offset', 'global'));
    expect(g.problems).toContain('imports the global env.offset, which Envoy does not provide (it provides no globals); define it inside the module');
    const m = await validateModule(nonFunctionImport('env', 'memory', 'memory'));
    expect(m.problems.join('\n')).not.toMatch(/imports/);
  });

  it('without a marker, does not also list ABI-specific imports as missing', async () => {
    const r = await validateModule(wasmModule({ imports: ['env.proxy_get_log_level'], functions: ['malloc'], memory: true }));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/no proxy-wasm ABI marker/);
  });
});

describe('host-abi tables', () => {
  it('hold what proxy-wasm-cpp-host registers', () => {
    expect(PROXY_FUNCTIONS_EVERY_ABI).toHaveLength(36);
    expect(PROXY_FUNCTIONS_BY_ABI.proxy_abi_version_0_1_0).toHaveLength(4);
    expect(PROXY_FUNCTIONS_BY_ABI.proxy_abi_version_0_2_0).toEqual(['proxy_continue_stream', 'proxy_close_stream']);
    expect(PROXY_FUNCTIONS_BY_ABI.proxy_abi_version_0_2_1).toEqual(['proxy_continue_stream', 'proxy_close_stream', 'proxy_get_log_level']);
    expect(WASI_FUNCTIONS).toHaveLength(45);
    expect(WASI_FUNCTIONS_MISSING).toEqual(['proc_raise']);
    expect(new Set(PROXY_FUNCTIONS_EVERY_ABI).size).toBe(36);
    expect(new Set(WASI_FUNCTIONS).size).toBe(45);
    expect(abisProviding('proxy_log')).toEqual([...ABI_MARKERS]);
    expect(abisProviding('proxy_get_log_level')).toEqual(['proxy_abi_version_0_2_1']);
  });

  it('list no foreign function that Envoy provides', () => {
    for (const host of FOREIGN_HOSTS) {
      expect(new Set(host.functions).size).toBe(host.functions.length);
      for (const name of host.functions) {
        for (const abi of ABI_MARKERS) expect(envoyProvides('env', name, abi as AbiMarker), `${host.host}: ${name}`).toBe(false);
      }
    }
  });
});
