// The build stage reuses a compiled module only when the compiler's exact
// inputs are unchanged: the reference plugin, built with the real toolchain,
// is reused on a second build and compiled again after a change to a source
// file, to asconfig.json, or to the compiler; a build script that runs more
// than asc is never reused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildPlugin, type BuildResult } from '../../src/build/index.js';
import { CACHE_DIR_NAME, scriptChain } from '../../src/build/cache.js';
import { installToolchain, type ToolchainResult } from '../../src/toolchain/index.js';
import { copyPlugin, TEMPLATE_DIR, tempDir } from '../helpers/cli.js';

describe('compile cache', () => {
  let toolCache: string;
  let work: string;
  let plugin: string;
  let tool: ToolchainResult;
  const saved = { ...process.env };

  beforeAll(async () => {
    // A tool cache of this test's own for the stored builds, sharing the installed compiler.
    work = tempDir('build-cache');
    toolCache = path.join(work, 'tool-cache');
    fs.mkdirSync(toolCache, { recursive: true });
    const shared = inject('toolCache');
    process.env.RUNNER_TOOL_CACHE = shared;
    plugin = copyPlugin(path.join(work, 'plugin'), TEMPLATE_DIR);
    tool = await installToolchain({ pluginDir: plugin });
    // The compiler stays where the toolchain stage put it; builds are stored under this test's tool cache.
    fs.symlinkSync(path.join(shared, 'asm-wasm-assemblyscript'), path.join(toolCache, 'asm-wasm-assemblyscript'));
    process.env.RUNNER_TOOL_CACHE = toolCache;
  });

  afterAll(() => {
    process.env.RUNNER_TOOL_CACHE = saved.RUNNER_TOOL_CACHE;
    fs.rmSync(work, { recursive: true, force: true });
  });

  const build = (dir = plugin, t: Pick<ToolchainResult, 'nodeModules' | 'assemblyscriptVersion' | 'direct'> = tool): Promise<BuildResult> =>
    buildPlugin({ pluginDir: dir, entry: 'assembly/index.ts', pluginName: 'header-authorization', nodeModules: t.nodeModules, compilerVersion: t.assemblyscriptVersion, direct: t.direct });

  it('reuses the module when nothing changed, in another checkout too, and stores it outside the plugin', async () => {
    const first = await build();
    expect(first.reusedKey).toBeUndefined();
    const again = await build();
    expect(again.reusedKey).toMatch(/^[0-9a-f]{16}$/);
    expect(again.sha256).toBe(first.sha256);
    // The store is in the tool cache, not in the plugin.
    expect(fs.readdirSync(path.join(toolCache, CACHE_DIR_NAME)).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(plugin, CACHE_DIR_NAME))).toBe(false);
    // A fresh checkout of the same sources (another directory, no build/) reuses it.
    const other = copyPlugin(path.join(work, 'checkout-2', 'plugin'), TEMPLATE_DIR);
    fs.symlinkSync(tool.nodeModules, path.join(other, 'node_modules'));
    const elsewhere = await build(other);
    expect(elsewhere.reusedKey).toBe(again.reusedKey);
    expect(elsewhere.sha256).toBe(first.sha256);
    expect(fs.existsSync(path.join(other, 'build', 'plugin.wasm'))).toBe(true);
  });

  it('compiles again after a source file changes, and reuses the old build when it changes back', async () => {
    const file = path.join(plugin, 'assembly', 'config.ts');
    const original = fs.readFileSync(file, 'utf8');
    const before = await build();
    expect(before.reusedKey).toBeDefined();
    fs.writeFileSync(file, original.replace('denyStatus: u32 = 403;', 'denyStatus: u32 = 401;'));
    const changed = await build();
    expect(changed.reusedKey).toBeUndefined();
    expect(changed.sha256).not.toBe(before.sha256);
    // A change to a file of the layer the compiler reads (not the entry) counts too.
    const layer = path.join(plugin, 'assembly', 'proxy', 'context.ts');
    const layerText = fs.readFileSync(layer, 'utf8');
    fs.writeFileSync(layer, `${layerText}\n// a comment\n`);
    expect((await build()).reusedKey).toBeUndefined();
    fs.writeFileSync(layer, layerText);
    fs.writeFileSync(file, original);
    const back = await build();
    expect(back.reusedKey).toBe(before.reusedKey);
    expect(back.sha256).toBe(before.sha256);
  });

  it('compiles again after asconfig.json changes', async () => {
    const file = path.join(plugin, 'asconfig.json');
    const original = fs.readFileSync(file, 'utf8');
    expect((await build()).reusedKey).toBeDefined();
    const config = JSON.parse(original);
    config.targets.release.shrinkLevel = 1;
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    expect((await build()).reusedKey).toBeUndefined();
    fs.writeFileSync(file, original);
  });

  it('compiles again with another compiler', async () => {
    expect((await build()).reusedKey).toBeDefined();
    // Another installation of the compiler, as the toolchain stage makes for another version or lockfile.
    const dir = path.join(toolCache, 'asm-wasm-assemblyscript-other', '0.28.20-hother', 'x64');
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.dirname(tool.nodeModules), dir, { recursive: true, verbatimSymlinks: true });
    const linked = path.join(toolCache, 'asm-wasm-assemblyscript');
    fs.unlinkSync(linked);
    fs.mkdirSync(linked);
    fs.renameSync(path.join(toolCache, 'asm-wasm-assemblyscript-other', '0.28.20-hother'), path.join(linked, '0.28.20-hother'));
    const other = { nodeModules: path.join(linked, '0.28.20-hother', 'x64', 'node_modules'), assemblyscriptVersion: tool.assemblyscriptVersion, direct: tool.direct };
    fs.unlinkSync(path.join(plugin, 'node_modules'));
    fs.symlinkSync(other.nodeModules, path.join(plugin, 'node_modules'));
    const rebuilt = await build(plugin, other);
    expect(rebuilt.reusedKey).toBeUndefined();
    expect((await build(plugin, other)).reusedKey).toBeDefined();
    // The same installation reporting another version.
    expect((await build(plugin, { ...other, assemblyscriptVersion: '0.28.21' })).reusedKey).toBeUndefined();
  });

  it('never reuses a build whose script runs more than asc', () => {
    expect(scriptChain('asbuild:release', { 'asbuild:release': 'asc assembly/index.ts --target release' })).toEqual({ chain: { 'asbuild:release': 'asc assembly/index.ts --target release' } });
    expect(scriptChain('asbuild', { asbuild: 'npm run gen && asc a.ts', gen: 'asc b.ts' })).toHaveProperty('chain');
    expect(scriptChain('asbuild', { asbuild: 'node gen.js && asc a.ts' })).toHaveProperty('reason');
    expect(scriptChain('asbuild', { asbuild: 'asc $ENTRY -o build/x.wasm' })).toHaveProperty('reason');
    expect(scriptChain('asbuild', { asbuild: 'asc a.ts --transform ./t.js' })).toHaveProperty('reason');
    expect(scriptChain('asbuild', { asbuild: 'cat x > y; asc a.ts' })).toHaveProperty('reason');
  });
});
