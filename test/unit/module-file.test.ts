import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_MODULE_BYTES, readModuleFile, sha256File } from '../../src/build/module-file.js';
import { splitImage } from '../../src/oci/index.js';
import { parseRegistry } from '../../src/oci/registry/index.js';
import { layoutTagDigest } from '../../src/oci/layout.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asm-wasm-modfile-'));

describe('readModuleFile', () => {
  it('refuses a file over the limit by its size, without reading it', () => {
    // A sparse 3 GiB file: nothing is written to disk, and reading it whole would fail.
    const big = path.join(dir, 'big.wasm');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, 3 * 1024 * 1024 * 1024);
    fs.closeSync(fd);
    expect(() => readModuleFile(big, 'input `wasm-path`')).toThrow(/^input `wasm-path`: .*big\.wasm is 3\.0 GiB, more than the 256\.0 MiB a proxy-wasm module can reasonably be/);
    expect(MAX_MODULE_BYTES).toBeLessThan(3 * 1024 * 1024 * 1024);
  });

  it('refuses a file that is not WebAssembly by its first bytes', () => {
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'hello, this is not a module');
    expect(() => readModuleFile(text, 'input `wasm-path`')).toThrow(/is not a WebAssembly module \(it does not start with \\0asm\)/);
    expect(() => readModuleFile(dir, 'input `wasm-path`')).toThrow(/is not a file/);
    expect(() => readModuleFile(path.join(dir, 'nope.wasm'), 'input `wasm-path`')).toThrow(/does not exist/);
  });

  it('reads a module and hashes files by streaming', async () => {
    const ok = path.join(dir, 'ok.wasm');
    fs.writeFileSync(ok, Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    expect(readModuleFile(ok, 'x').length).toBe(8);
    expect(await sha256File(ok)).toBe('93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476');
  });
});

describe('registry addresses', () => {
  it('says to drop a URL scheme from image, and refuses a port out of range', () => {
    expect(() => splitImage('http://registry.example.com/team/p')).toThrow(
      'input `image`: "http://registry.example.com/team/p" starts with http://; give host/repository without a scheme (e.g. registry.example.com/team/p); a registry that speaks plain HTTP needs registry-insecure: true unless it is on loopback',
    );
    expect(() => splitImage('registry.example.com:99999/team/p')).toThrow('input `image`: the registry port 99999 in "registry.example.com:99999/team/p" is not a port number (1 to 65535)');
    expect(() => parseRegistry('registry.example.com:0')).toThrow(/port 0, which is not a port number/);
    expect(splitImage('oci://registry.example.com:5000/team/p')).toEqual({ registry: 'registry.example.com:5000', repository: 'team/p' });
  });
});

describe('OCI layout index', () => {
  it('names a malformed index.json and the fix, instead of a parse stack', async () => {
    const layout = path.join(dir, 'layout');
    fs.mkdirSync(layout);
    fs.writeFileSync(path.join(layout, 'index.json'), '{ "manifests": [');
    await expect(layoutTagDigest(layout, 'v1')).rejects.toThrow(/index\.json is not valid JSON .*delete the layout folder .* and run the push stage again/);
    fs.writeFileSync(path.join(layout, 'index.json'), '{"manifests": {}}');
    await expect(layoutTagDigest(layout, 'v1')).rejects.toThrow(/is not an OCI image index/);
  });
});
