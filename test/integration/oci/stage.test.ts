// The push stage as the action and CLI run it: build, local Envoy test and
// push in one `run`, to a real registry with TLS and basic auth, then read
// back with skopeo, an independent client.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makePlugin, runCli, tempDir } from '../../helpers/cli.js';
import { requireTools, startRegistry, type TestRegistry } from '../../infra/registry.js';

const toolCache = inject('toolCache');
let registry: TestRegistry;

beforeAll(async () => {
  requireTools();
  registry = await startRegistry('tls-basic');
});

afterAll(async () => {
  await registry?.close();
});

describe('the push stage in the pipeline', () => {
  it('pushes what was built and tested, outputs the manifest digest and the oci:// url, and skopeo reads it back', async () => {
    const plugin = makePlugin();
    const image = `${registry.host}/team/header-authorization`;
    const args = ['run', '--plugin-dir', plugin, '--image', image, '--tags', 'v0.1.0,latest', '--registry-username', registry.username!, '--registry-password', registry.password!, '--registry-ca', registry.caFile!, '--json'];
    const run = await runCli(args, { RUNNER_TOOL_CACHE: toolCache });
    expect(run.json!.error).toBeUndefined();
    expect(run.code).toBe(0);
    const out = run.json!.outputs;
    expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out['image-ref']).toBe(`${image}@${out.digest}`);
    expect(out.url).toBe(`oci://${image}@${out.digest}`);
    expect(out.tags).toBe('v0.1.0,latest');
    expect(out['test-passed']).toBe('5');
    // The password never reaches the log.
    expect(run.stdout + run.stderr).not.toContain(registry.password!);

    const creds = `${registry.username}:${registry.password}`;
    for (const ref of [`${image}@${out.digest}`, `${image}:v0.1.0`, `${image}:latest`]) {
      const raw = execFileSync('skopeo', ['inspect', '--raw', '--cert-dir', registry.certDir!, '--creds', creds, `docker://${ref}`]);
      expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(raw).digest('hex')}`, ref).toBe(out.digest);
    }
    const dir = path.join(tempDir('skopeo'), 'image');
    execFileSync('skopeo', ['copy', '--src-cert-dir', registry.certDir!, '--src-creds', creds, `docker://${image}@${out.digest}`, `dir:${dir}`]);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');

    // The same plugin again: nothing uploaded, the same digest.
    const again = await runCli(['push', '--plugin-dir', plugin, '--wasm-path', path.join(plugin, 'build', 'plugin.wasm'), ...args.slice(3)], { RUNNER_TOOL_CACHE: toolCache });
    expect(again.json!.error).toBeUndefined();
    expect(again.json!.outputs.digest).toBe(out.digest);
    expect(again.json!.results.push).toMatchObject({ uploaded: 0, skipped: 2 });
  });

  it('a wrong password fails with the registry, repository and user named, and not the password', async () => {
    const plugin = makePlugin();
    const run = await runCli(
      ['run', '--plugin-dir', plugin, '--no-test', '--image', `${registry.host}/team/p`, '--registry-username', registry.username!, '--registry-password', 'not-the-password', '--registry-ca', registry.caFile!],
      { RUNNER_TOOL_CACHE: toolCache },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(registry.host);
    expect(run.stderr).toContain('team/p');
    expect(run.stderr).toContain(registry.username!);
    expect(run.stderr).not.toContain('not-the-password');
  });
});
