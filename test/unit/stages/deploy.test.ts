import { describe, expect, it } from 'vitest';
import type { DeployResult } from '../../../src/k8s/deploy.js';
import { diffObjects } from '../../../src/k8s/diff.js';
import { UserError } from '../../../src/errors.js';
import { DeployVerificationError } from '../../../src/k8s/deploy.js';
import { formatDeploySummary, renderDeploy } from '../../../src/stages/deploy/render.js';
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

describe('the deploy stage\'s summary', () => {
  const verified = { image: `registry.example.com/mesh/edge@sha256:${'b'.repeat(64)}`, ref: `registry.example.com/mesh/edge:sha256-${'b'.repeat(64)}.sig`, checked: 2 };

  it('shows the signature checked before the apply, then what was applied, and sets the outputs (golden)', () => {
    const view = renderDeploy({ verified, result: result() });
    expectGolden('deploy-summary-verified.md', view.summary);
    expect(view.summary.startsWith('<h3>Signature verified</h3>\n<p><code>registry.example.com/mesh/edge@sha256:')).toBe(true);
    expect(view.summary).toContain('### WasmPlugin `istio-system/edge`: configured');
    expect(view.outputs).toEqual([['wasmplugin', 'istio-system/edge'], ['result', 'configured'], ['generation', 2]]);
    expect(view.error).toBeUndefined();
  });

  it('shows a failed verification with the gateway pods and the rollback, sets no outputs and fails (golden)', () => {
    const failed = result({
      pods: [
        { pod: 'istio-system/istio-ingressgateway-1', problems: ['the Wasm module failed to load: fetch | 401 Unauthorized'], notes: [] },
        { pod: 'istio-system/istio-ingressgateway-2', problems: [], notes: ['no fetch seen since the apply'] },
      ],
      rollback: { action: 'restored', ok: true, generation: 3 },
    });
    const error = new DeployVerificationError(failed);
    const view = renderDeploy({ result: failed, error });
    expectGolden('deploy-summary-rolled-back.md', view.summary);
    expect(view.summary).toContain('Rolled back: previous spec restored (generation 3).');
    expect(view.summary).toContain('| istio-system/istio-ingressgateway-1 | FAIL | the Wasm module failed to load: fetch \\| 401 Unauthorized |');
    expect(view.outputs).toEqual([]);
    expect(view.error).toBe(error);
    expect(error.message).toContain('rolled back: the previous spec was restored (generation 3)');
  });

  it('still shows the signature checked when the deploy failed after it, and nothing of a deploy that did not happen', () => {
    const error = new UserError('input `create-pull-secret` needs `image-pull-secret`: the name of the Secret to create');
    const view = renderDeploy({ verified, error });
    expect(view.summary).toBe(
      `<h3>Signature verified</h3>\n<p><code>${verified.image}</code> is signed by <code>verify-key</code> (<code>${verified.ref}</code>, 2 signature(s) checked).</p>\n`,
    );
    expect(view.outputs).toEqual([]);
    expect(view.error).toBe(error);
  });
});
