// A real Envoy running a plugin the way istiod configures a gateway (the
// action's own bootstrap), in front of the httpbin-like test upstream.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inject } from 'vitest';
import { renderEnvoyBootstrap } from '../../src/envoy/bootstrap.js';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.js';
import { startUpstream, type Upstream } from '../../src/localtest/upstream.js';
import { runCli, makePlugin, tempDir } from './cli.js';

export interface Gateway {
  /** http://127.0.0.1:<listener port> */
  url: string;
  envoy: EnvoyProcess;
  upstream: Upstream;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** pluginConfig, sent to the plugin as JSON. */
  config: Record<string, unknown>;
  /** Envoy's log level for the plugin (its `wasm` component); default info. */
  logLevel?: string;
}

/** Compiles a plugin directory (default: a copy of the reference plugin) with the action's toolchain and build stages. */
export async function compilePlugin(dir: string = makePlugin()): Promise<string> {
  for (const stage of ['toolchain', 'build']) {
    const run = await runCli([stage, '--plugin-dir', dir, '--json'], { RUNNER_TOOL_CACHE: inject('toolCache') });
    if (run.code !== 0) throw new Error(`could not ${stage} the test plugin: ${run.json?.error ?? run.stderr}`);
  }
  return path.join(dir, 'build', 'plugin.wasm');
}

/** Starts the upstream and an Envoy running `wasm` as istio-system.header-authorization. */
export async function startGateway(wasm: string, options: GatewayOptions): Promise<Gateway> {
  const upstream = await startUpstream();
  const workDir = tempDir('gateway');
  let envoy: EnvoyProcess;
  try {
    envoy = await startEnvoy({
      binary: inject('envoyPath'),
      workDir,
      componentLogLevel: `wasm:${options.logLevel ?? 'info'}`,
      bootstrap: renderEnvoyBootstrap({
        listenerPort: 0,
        adminPort: 0,
        upstreamPort: upstream.port,
        filter: {
          name: 'header-authorization',
          namespace: 'istio-system',
          rootId: 'header-authorization',
          configuration: JSON.stringify(options.config),
          failStrategy: 'FAIL_CLOSE',
          wasmPath: wasm,
        },
      }),
    });
  } catch (err) {
    await upstream.close();
    fs.rmSync(workDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `http://127.0.0.1:${envoy.listenerPort}`,
    envoy,
    upstream,
    stop: async () => {
      await envoy.stop();
      await upstream.close();
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
