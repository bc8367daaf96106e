// Builds small WebAssembly modules byte by byte, so the module checks can be
// unit-tested against exactly the imports and exports a case needs, without a
// compiler. Every function has type () -> ().

/** An unsigned LEB128 number, as the binary format writes sizes and counts. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function str(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export interface ModuleSpec {
  /** "module.name" function imports. */
  imports?: string[];
  /** Exported functions. */
  functions?: string[];
  /** Export a memory named "memory". */
  memory?: boolean;
}

export function wasmModule(spec: ModuleSpec): Uint8Array {
  const imports = spec.imports ?? [];
  const functions = spec.functions ?? [];
  const bytes: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  bytes.push(...section(1, [1, 0x60, 0, 0])); // one type: () -> ()
  if (imports.length) {
    const body = [...uleb(imports.length)];
    for (const imp of imports) {
      const [mod, name] = imp.split('.');
      body.push(...str(mod), ...str(name), 0x00, 0x00);
    }
    bytes.push(...section(2, body));
  }
  if (functions.length) bytes.push(...section(3, [...uleb(functions.length), ...functions.map(() => 0)]));
  if (spec.memory) bytes.push(...section(5, [1, 0x00, 1]));
  const exports: number[] = [];
  let count = 0;
  functions.forEach((name, i) => {
    exports.push(...str(name), 0x00, ...uleb(imports.length + i));
    count++;
  });
  if (spec.memory) {
    exports.push(...str('memory'), 0x02, 0);
    count++;
  }
  if (count) bytes.push(...section(7, [...uleb(count), ...exports]));
  if (functions.length) {
    const body = [...uleb(functions.length)];
    for (let i = 0; i < functions.length; i++) body.push(2, 0, 0x0b); // no locals, end
    bytes.push(...section(10, body));
  }
  return new Uint8Array(bytes);
}

/** A module with everything Envoy needs, plus `extra`. */
export function proxyWasmModule(extra: ModuleSpec = {}): Uint8Array {
  return wasmModule({
    imports: ['env.proxy_log', ...(extra.imports ?? [])],
    functions: ['proxy_abi_version_0_2_0', 'proxy_on_memory_allocate', 'proxy_on_context_create', ...(extra.functions ?? [])],
    memory: extra.memory ?? true,
  });
}
