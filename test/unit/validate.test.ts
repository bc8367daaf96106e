import { describe, expect, it } from 'vitest';
import { validateModule } from '../../src/build/validate.js';
import { proxyWasmModule, wasmModule } from '../helpers/wasm.js';

describe('validateModule', () => {
  it('accepts a module with one ABI marker, memory, an allocator and proxy imports', async () => {
    const r = await validateModule(proxyWasmModule({ imports: ['wasi_snapshot_preview1.fd_write', 'wasi_unstable.proc_exit'] }));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.info?.abi).toBe('proxy_abi_version_0_2_0');
    expect(r.info?.allocator).toBe('proxy_on_memory_allocate');
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
    ['an env import that is not a host call', proxyWasmModule({ imports: ['env.seed'] }), /imports env\.seed/],
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
