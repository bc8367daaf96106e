// rollback() writes only while the live object is still the one this run
// applied, and makes every write conditional on the resourceVersion it
// checked. The API server's side of that (409 on a stale resourceVersion or
// precondition) is exercised against a real kube-apiserver in
// test/integration/k8s/deploy.test.ts; here a scripted server answers, to
// show the requests and what happens when a change lands between the check
// and the write.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import type { KubeClient, KubeRequest, KubeResponse } from '../../../src/k8s/client.js';
import { rollback } from '../../../src/k8s/rollback.js';
import type { WasmPlugin } from '../../../src/plugin/model.js';

function object(url: string, resourceVersion: string, generation: number, uid = 'uid-1'): WasmPlugin {
  return {
    apiVersion: 'extensions.istio.io/v1alpha1',
    kind: 'WasmPlugin',
    metadata: { name: 'p', namespace: 'istio-system', uid, resourceVersion, generation },
    spec: { url, pluginName: 'p', pluginConfig: { value: 'secret' } },
  };
}

const PREVIOUS = object('oci://r/p@sha256:old', '5', 1);
const APPLIED = object('oci://r/p@sha256:ours', '7', 2);

/** A client whose answers are scripted, one per request, recording the requests. */
function scripted(...answers: Array<Partial<KubeResponse>>): { client: KubeClient; requests: KubeRequest[] } {
  const requests: KubeRequest[] = [];
  const client = {
    send: async (req: KubeRequest) => {
      requests.push(structuredClone(req));
      const answer = answers.shift();
      if (!answer) throw new Error(`unexpected request ${req.method} ${req.path}`);
      return { status: 200, text: '', body: undefined, ...answer } as KubeResponse;
    },
    apiError: (res: KubeResponse) => new UserError(`HTTP ${res.status}`),
  } as unknown as KubeClient;
  return { client, requests };
}

const target = { namespace: 'istio-system', name: 'p', applied: APPLIED };

describe('rollback with optimistic concurrency', () => {
  it('restores with a forced server-side apply by our manager that carries the resourceVersion it checked', async () => {
    const { client, requests } = scripted({ status: 200, body: APPLIED }, { status: 200, body: { metadata: { generation: 3 } } });
    expect(await rollback(client, PREVIOUS, target)).toEqual({ action: 'restored', ok: true, generation: 3 });
    expect(requests.map((r) => r.method)).toEqual(['GET', 'PATCH']);
    expect(requests[1]).toMatchObject({ contentType: 'application/apply-patch+yaml', query: { fieldManager: 'asm-wasm-action', force: true } });
    const body = requests[1].body as WasmPlugin;
    expect(body.metadata.resourceVersion).toBe('7');
    expect(body.spec).toEqual(PREVIOUS.spec);
  });

  it('writes nothing when the live object is newer than what this run applied', async () => {
    const theirs = object('oci://r/p@sha256:theirs', '9', 3);
    const { client, requests } = scripted({ status: 200, body: theirs });
    expect(await rollback(client, PREVIOUS, target)).toEqual({
      action: 'restored',
      ok: false,
      changedSince: 'someone else changed istio-system/p after this run applied it (resourceVersion 7 → 9, generation 2 → 3)',
    });
    expect(requests.map((r) => r.method)).toEqual(['GET']);
  });

  it('still restores when only the status moved (istiod writes status)', async () => {
    const withStatus = { ...object('oci://r/p@sha256:ours', '8', 2), status: { conditions: [] } };
    const { client, requests } = scripted({ status: 200, body: withStatus }, { status: 200, body: { metadata: { generation: 3 } } });
    expect((await rollback(client, PREVIOUS, target)).ok).toBe(true);
    expect((requests[1].body as WasmPlugin).metadata.resourceVersion).toBe('8');
  });

  it('looks again after a 409 and refuses when someone else changed it in between', async () => {
    const theirs = object('oci://r/p@sha256:theirs', '9', 3);
    const { client, requests } = scripted({ status: 200, body: APPLIED }, { status: 409 }, { status: 200, body: theirs });
    const result = await rollback(client, PREVIOUS, target);
    expect(result).toMatchObject({ ok: false, changedSince: expect.stringContaining('resourceVersion 7 → 9') });
    expect(requests.map((r) => r.method)).toEqual(['GET', 'PATCH', 'GET']);
  });

  it('refuses when someone deleted the object since (a restore would undo their delete)', async () => {
    const { client } = scripted({ status: 404 });
    expect(await rollback(client, PREVIOUS, target)).toEqual({
      action: 'restored',
      ok: false,
      changedSince: 'someone else deleted istio-system/p after this run applied it',
    });
  });

  it('refuses when the object was deleted and created again', async () => {
    const { client } = scripted({ status: 200, body: object('oci://r/p@sha256:ours', '20', 1, 'uid-2') });
    expect((await rollback(client, PREVIOUS, target)).changedSince).toBe('someone else deleted istio-system/p and created it again after this run applied it');
  });

  it('deletes what it created with uid and resourceVersion preconditions', async () => {
    const { client, requests } = scripted({ status: 200, body: APPLIED }, { status: 200 });
    expect(await rollback(client, null, target)).toEqual({ action: 'deleted', ok: true });
    expect(requests[1]).toMatchObject({ method: 'DELETE', body: { kind: 'DeleteOptions', preconditions: { uid: 'uid-1', resourceVersion: '7' } } });
  });

  it('does not delete what another run applied over what it created', async () => {
    const { client, requests } = scripted({ status: 200, body: object('oci://r/p@sha256:theirs', '9', 3) });
    expect(await rollback(client, null, target)).toMatchObject({ action: 'deleted', ok: false, changedSince: expect.stringContaining('someone else changed') });
    expect(requests.map((r) => r.method)).toEqual(['GET']);
  });
});
