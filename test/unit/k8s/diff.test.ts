import { describe, expect, it } from 'vitest';
import { diffLines, diffObjects, sameContent } from '../../../src/k8s/diff.js';

const live = {
  metadata: {
    name: 'p',
    namespace: 'istio-system',
    resourceVersion: '10',
    generation: 3,
    managedFields: [{ manager: 'x' }],
    labels: { app: 'p' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{...}' },
  },
  spec: {
    url: 'oci://r/p@sha256:aaa',
    selector: { matchLabels: { istio: 'ingressgateway' } },
    pluginConfig: { header: 'x-hello', value: 'one' },
    failStrategy: 'FAIL_OPEN',
  },
  status: { conditions: [] },
};

describe('diffObjects', () => {
  it('is empty when labels, annotations and spec are the same (server fields ignored)', () => {
    const same = structuredClone(live);
    same.metadata.resourceVersion = '11';
    same.metadata.generation = 4;
    same.spec = { failStrategy: 'FAIL_OPEN', url: 'oci://r/p@sha256:aaa', pluginConfig: { value: 'one', header: 'x-hello' }, selector: live.spec.selector };
    expect(diffObjects(live, same)).toBe('');
    expect(sameContent(live, same)).toBe(true);
  });

  it('shows a changed field as - and + with context', () => {
    const next = structuredClone(live);
    next.spec.failStrategy = 'FAIL_CLOSE';
    expect(diffObjects(live, next)).toBe(
      [
        '--- live',
        '+++ new',
        '@@ -2,7 +2,7 @@',
        '   labels:',
        '     app: p',
        ' spec:',
        '-  failStrategy: FAIL_OPEN',
        '+  failStrategy: FAIL_CLOSE',
        '   pluginConfig:',
        '     header: (hidden)',
        '     value: (hidden)',
      ].join('\n'),
    );
    expect(sameContent(live, next)).toBe(false);
  });

  it('shows which pluginConfig keys changed, never their values', () => {
    const next = structuredClone(live);
    next.spec.pluginConfig = { header: 'x-hello', value: 'hunter2-new-secret', extra: 'added-secret' } as typeof live.spec.pluginConfig;
    const diff = diffObjects(live, next);
    expect(diff).toBe(
      [
        '--- live',
        '+++ new',
        '@@ -4,8 +4,9 @@',
        ' spec:',
        '   failStrategy: FAIL_OPEN',
        '   pluginConfig:',
        '+    extra: (hidden)',
        '     header: (hidden)',
        '-    value: (hidden)',
        '+    value: (hidden, changed)',
        '   selector:',
        '     matchLabels:',
        '       istio: ingressgateway',
      ].join('\n'),
    );
    for (const secret of ['one', 'x-hello', 'hunter2', 'added-secret']) expect(diff).not.toContain(secret);
    expect(sameContent(live, next)).toBe(false);
  });

  it('shows a new object as all additions and a deleted one as all removals', () => {
    const created = diffObjects(null, live);
    expect(created.split('\n').slice(0, 3)).toEqual(['--- (does not exist)', '+++ new', '@@ -0,0 +1,12 @@']);
    expect(created).toContain('+  url: oci://r/p@sha256:aaa');
    expect(created).not.toContain('last-applied');
    const deleted = diffObjects(live, null);
    expect(deleted.split('\n').slice(0, 2)).toEqual(['--- live', '+++ (deleted)']);
    expect(deleted.split('\n').slice(3).every((l) => l.startsWith('-'))).toBe(true);
  });
});

describe('diffLines', () => {
  it('aligns on the longest common subsequence', () => {
    const ops = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']);
    expect(ops.map((o) => `${o.kind}${o.line}`)).toEqual([' a', '-b', '+x', ' c', ' d', '+e']);
  });
});
