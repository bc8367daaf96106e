// The deploy stage's outputs and part of the job summary, from its record
// alone: the signature checked (HTML, as the other stages' sections) and what
// was applied where (Markdown). pluginConfig values never appear in it: the
// diff hides them (k8s/diff.ts) and the keys that changed are listed by name.
import type { DeployResult } from '../../k8s/deploy.js';
import { formatVerifyReport } from '../../k8s/verify.js';
import { describeSha256, wasmOf } from '../../k8s/wasmplugin.js';
import { escapeHtml, sectionHtml } from '../../summary.js';
import type { OutputValue, StageView } from '../stage.js';
import type { DeployStageRecord } from './index.js';

export function renderDeploy(record: DeployStageRecord): StageView {
  const { verified: v, result, error } = record;
  const outputs: Array<[string, OutputValue]> = [];
  if (result && !error) {
    outputs.push(['wasmplugin', result.wasmplugin], ['result', result.result]);
    if (result.generation !== undefined) outputs.push(['generation', result.generation]);
  }
  const summary = [
    v
      ? sectionHtml({
          title: 'Signature verified',
          lines: [
            `<code>${escapeHtml(v.image)}</code> is signed by ` +
              (v.identity
                ? `<code>${escapeHtml(v.identity.identity)}</code> (issuer <code>${escapeHtml(v.identity.issuer)}</code>, keyless, certificate from the trusted root, logged in Rekor)`
                : '<code>verify-key</code>') +
              ` (<code>${escapeHtml(v.ref)}</code>, ${v.checked} signature(s) checked).`,
          ],
        })
      : '',
    result ? `${formatDeploySummary(result)}\n` : '',
  ].join('');
  return { outputs, summary, error };
}

export function formatDeploySummary(result: DeployResult): string {
  const out: string[] = [];
  const verb = result.dryRun ? `would be ${result.result} (dry run, nothing changed)` : result.result;
  out.push(`### ${result.kind} \`${result.wasmplugin}\`: ${verb}`);
  out.push('');
  out.push(`- API server: ${result.server} (context \`${result.context}\`)`);
  if (result.generation !== undefined) out.push(`- generation: ${result.generation}`);
  const spec = result.object ? wasmOf(result.object) : undefined;
  if (spec?.url) out.push(`- url: \`${spec.url}\``);
  if (spec?.sha256 && spec.url) out.push(`- sha256: \`${spec.sha256}\` (${describeSha256(spec.url)})`);
  if (result.pluginConfigChanged?.length) {
    out.push(`- pluginConfig keys ${result.previous ? 'changed' : 'set'}: ${result.pluginConfigChanged.map((k) => `\`${k}\``).join(', ')} (values are not shown)`);
  }
  for (const note of result.notes ?? []) out.push(`- note: ${note}`);
  if (result.pullSecret) out.push(`- image pull secret \`${result.pullSecret.name}\`: ${result.pullSecret.result}${result.pullSecret.restored ? `, then ${result.pullSecret.restored}` : ''}`);
  for (const warning of result.warnings) out.push(`- :warning: ${warning}`);
  if (result.diff) {
    out.push('', '<details open><summary>diff against the live object</summary>', '', '```diff', result.diff, '```', '', '</details>');
  }
  if (result.verification) out.push('', formatVerifyReport(result.verification));
  if (result.pods?.length) {
    out.push('', '| gateway pod | result | details |', '| --- | --- | --- |');
    for (const p of result.pods) {
      out.push(`| ${p.pod} | ${p.problems.length ? 'FAIL' : 'ok'} | ${[...p.problems, ...p.notes].join('; ').replace(/\|/g, '\\|')} |`);
    }
  }
  if (result.rollback) {
    const rb = result.rollback;
    out.push(
      '',
      rb.changedSince
        ? `**Not rolled back**: ${rb.changedSince}. Their version was left as it is; this run changed nothing more.`
        : rb.ok
        ? `Rolled back: ${rb.action === 'deleted' ? `the ${result.kind} this run created was deleted` : `previous spec restored (generation ${rb.generation})`}.`
        : `**Rollback failed**: ${rb.error}`,
    );
  }
  return out.join('\n');
}
