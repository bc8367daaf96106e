// Small valid wasm modules for unit tests: the 8-byte header plus a custom
// section, so different texts give different modules.
export function wasmModule(text = 'asm-wasm test module'): Buffer {
  const name = Buffer.from('note');
  const payload = Buffer.from(text);
  const body = Buffer.concat([Buffer.from([name.length]), name, payload]);
  if (body.length > 127) throw new Error('keep test modules small');
  return Buffer.concat([Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]), Buffer.from([0x00, body.length]), body]);
}
