import { describe, expect, it } from 'vitest';
import type { DeployResult } from '../../../src/k8s/deploy.js';
import { diffObjects } from '../../../src/k8s/diff.js';
import { formatDeploySummary } from '../../../src/k8s/summary.js';
import { changedPluginConfigKeys, withPluginConfigHidden, type WasmPlugin } from '../../../src/plugin/model.js';
import { expectGolden } from '../../helpers/golden.js';
import { pluginOf } from '../../helpers/plugin.js';

const OLD_SECRET = 'old-shared-secret-4711';
const NEW_SECRET = 'new-shared-secret-0815';
const URL_V1 = `oci://registry.example.com/mesh/edge@sha256:${'a'.repeat(64)}`;
const URL_V2 = `oci://registry.example.com/mesh/edge@sha256:${'b'.repeat(64)}`;

function live(url: string, value: string, resourceVersion: string, generation: number): WasmPlugin {
  const { object } = pluginOf({ name: 'edge', url, pluginName: 'edge', failStrategy: 'FAIL_OPEN', pluginConfig: { header: 'x-token', value } });
  return { ...(object as WasmPlugin), metadata: { ...object.metadata, uid: 'u-1', resourceVersion, generation } };
}

function result(over: Partial<DeployResult> = {}): DeployResult {
  const previous = live(URL_V1, OLD_SECRET, '10', 1);
  const object = live(URL_V2, NEW_SECRET, '11', 2);
  return {
    mode: 'apply',
    kind: 'WasmPlugin',
    wasmplugin: 'istio-system/edge',
    namespace: 'istio-system',
    name: 'edge',
    result: 'configured',
    dryRun: false,
    generation: 2,
    diff: diffObjects(previous, object),
    server: 'https://127.0.0.1:6443',
    context: 'ci',
    object,
    previous,
    warnings: [],
    notes: ['spec.selector: neither wasmplugin.yaml nor the inputs set a selector or targetRefs, so the plugin applies to the default selector istio: ingressgateway'],
    pluginConfigChanged: changedPluginConfigKeys(previous.spec.pluginConfig, object.spec.pluginConfig),
    ...over,
  };
}

describe('formatDeploySummary', () => {
  it('shows which pluginConfig keys changed and the default selector, never a pluginConfig value (golden)', () => {
    const summary = formatDeploySummary(result());
    expectGolden('deploy-summary-configured.md', `${summary}\n`);
    expect(summary).toContain('pluginConfig keys changed: `value` (values are not shown)');
    for (const secret of [OLD_SECRET, NEW_SECRET, 'x-token']) expect(summary).not.toContain(secret);
    // Nor in the --json output of the same result.
    for (const secret of [OLD_SECRET, NEW_SECRET]) expect(JSON.stringify(withPluginConfigHidden(result()))).not.toContain(secret);
  });

  it('says a rollback was refused because someone else changed the object since (golden)', () => {
    const summary = formatDeploySummary(
      result({
        rollback: {
          action: 'restored',
          ok: false,
          changedSince: 'someone else changed istio-system/edge after this run applied it (resourceVersion 11 → 12, generation 2 → 3)',
        },
      }),
    );
    expectGolden('deploy-summary-rollback-refused.md', `${summary}\n`);
    expect(summary).toContain('**Not rolled back**: someone else changed istio-system/edge after this run applied it');
    for (const secret of [OLD_SECRET, NEW_SECRET]) expect(summary).not.toContain(secret);
  });
});
