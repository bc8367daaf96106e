// Does the plugin register the root id we will deploy with?
//
// Istio passes WasmPlugin.spec.pluginName to Envoy as root_id, and SDKs that
// keep several root contexts look the factory up by that id when Envoy
// creates the root context; an unknown id traps there and the gateway never
// loads the plugin. A module's registered ids are not declared anywhere, so
// we ask the module itself: instantiate it in Node with a minimal host that
// answers the `plugin_root_id` property, and create the root context the way
// Envoy does (proxy_on_context_create, then proxy_on_vm_start). This is the
// same call sequence, not a model of it; the real Envoy test still follows.

interface ProbeResult {
  accepted: boolean;
  /** The trap or exit that refused the id. */
  error?: string;
  /** What the plugin logged, for the error message. */
  logs: string[];
}

class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

/** Calls the plugin with `rootId` as Envoy would when creating its root context. */
export async function probeRootId(bytes: Uint8Array, rootId: string): Promise<ProbeResult> {
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const logs: string[] = [];
  let instance: WebAssembly.Instance | undefined;
  const memory = () => new Uint8Array((instance!.exports.memory as WebAssembly.Memory).buffer);
  const view = () => new DataView((instance!.exports.memory as WebAssembly.Memory).buffer);
  const readString = (ptr: number, size: number) => Buffer.from(memory().subarray(ptr, ptr + size)).toString('utf8');
  const allocate = (size: number): number => {
    const exp = instance!.exports;
    const fn = (exp.proxy_on_memory_allocate ?? exp.malloc) as (n: number) => number;
    return fn(size);
  };
  const returnBytes = (data: Buffer, ptrPtr: number, sizePtr: number): number => {
    const ptr = allocate(data.length);
    memory().set(data, ptr);
    view().setUint32(ptrPtr, ptr, true);
    view().setUint32(sizePtr, data.length, true);
    return 0;
  };

  const env: Record<string, (...args: number[]) => number | void> = {
    proxy_log: (_level: number, ptr: number, size: number) => {
      logs.push(readString(ptr, size));
      return 0;
    },
    proxy_get_property: (pathPtr: number, pathSize: number, valuePtrPtr: number, valueSizePtr: number) => {
      const segments = readString(pathPtr, pathSize).split('\0').filter(Boolean);
      if (segments.join('.') === 'plugin_root_id') return returnBytes(Buffer.from(rootId, 'utf8'), valuePtrPtr, valueSizePtr);
      return 1; // NotFound
    },
    proxy_get_buffer_bytes: (_type: number, _start: number, _max: number, ptrPtr: number, sizePtr: number) =>
      returnBytes(Buffer.alloc(0), ptrPtr, sizePtr),
  };
  const wasi: Record<string, (...args: number[]) => number | void> = {
    proc_exit: (code: number) => {
      throw new ProcExit(code);
    },
    fd_write: (_fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) => {
      let n = 0;
      for (let i = 0; i < iovsLen; i++) n += view().getUint32(iovs + i * 8 + 4, true);
      view().setUint32(nwrittenPtr, n, true);
      return 0;
    },
  };

  const imports: WebAssembly.Imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') continue;
    const table = imp.module === 'env' ? env : wasi;
    const fn = table[imp.name] ?? (() => 0);
    (imports[imp.module] ??= {})[imp.name] = fn;
  }

  try {
    instance = await WebAssembly.instantiate(module, imports);
    const exp = instance.exports as Record<string, unknown>;
    if (typeof exp._initialize === 'function') (exp._initialize as () => void)();
    else if (typeof exp._start === 'function') (exp._start as () => void)();
    const rootContextId = 1;
    (exp.proxy_on_context_create as (a: number, b: number) => void)(rootContextId, 0);
    if (typeof exp.proxy_on_vm_start === 'function') {
      (exp.proxy_on_vm_start as (a: number, b: number) => number)(rootContextId, 0);
    }
    return { accepted: true, logs };
  } catch (err) {
    return { accepted: false, error: (err as Error).message, logs };
  }
}

export interface RootIdCheck {
  ok: boolean;
  /** True when the plugin accepts any root id (single-root SDKs). */
  anyId: boolean;
  message: string;
}

/** Checks `rootId` and, for the message, whether the plugin tells ids apart at all. */
export async function checkRootId(bytes: Uint8Array, rootId: string): Promise<RootIdCheck> {
  const wanted = await probeRootId(bytes, rootId);
  if (!wanted.accepted) {
    const said = wanted.logs.filter((l) => /root/i.test(l)).pop() ?? wanted.logs.pop() ?? wanted.error ?? '';
    return {
      ok: false,
      anyId: false,
      message: `the plugin does not register root id "${rootId}" (creating its root context failed: ${said}); set \`plugin-name\` (spec.pluginName) to the name the plugin passes to registerRootContext`,
    };
  }
  const other = await probeRootId(bytes, `asm-wasm-probe-${process.pid}`);
  return {
    ok: true,
    anyId: other.accepted,
    message: other.accepted
      ? `the plugin accepts any root id, "${rootId}" included`
      : `the plugin registers root id "${rootId}"`,
  };
}
