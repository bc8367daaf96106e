// Undoing an apply that failed verification: the previous object put back,
// or the one this run created deleted, but never over someone else's change.
import type { KubeClient } from './client.js';
import { sameContent } from './diff.js';
import { FIELD_MANAGER, getLiveObject, pluginPath, purpose } from './objects.js';
import { WASMPLUGIN_API_VERSION, type ExtensionResource } from './wasmplugin.js';

export interface RollbackResult {
  /** What was done (or meant): the previous spec put back, or the object we created deleted. */
  action: 'restored' | 'deleted';
  ok: boolean;
  /** Generation after a restore. */
  generation?: number;
  error?: string;
  /**
   * Set when nothing was rolled back because the live object is no longer
   * the one this run applied (another run or a person changed or deleted it
   * since): what happened to it. Their change is left as it is.
   */
  changedSince?: string;
}

/**
 * Why the live object is no longer the one this run applied, or undefined
 * when it still is: the same resourceVersion, or only what the server and
 * controllers write moved (status, managedFields; istiod may write status).
 */
function changedSinceApply(applied: ExtensionResource, live: ExtensionResource): string | undefined {
  const what = `${live.metadata.namespace}/${live.metadata.name}`;
  if (applied.metadata.uid && live.metadata.uid !== applied.metadata.uid) {
    return `someone else deleted ${what} and created it again after this run applied it`;
  }
  if (live.metadata.resourceVersion === applied.metadata.resourceVersion || sameContent(applied, live)) return undefined;
  return (
    `someone else changed ${what} after this run applied it ` +
    `(resourceVersion ${applied.metadata.resourceVersion} → ${live.metadata.resourceVersion}, generation ${applied.metadata.generation} → ${live.metadata.generation})`
  );
}

/**
 * Puts `previous` back exactly (labels, annotations, spec), or deletes the
 * object when there was no previous one, but only while the live object is
 * still the one this run applied (`target.applied`, as the apply returned
 * it). Optimistic concurrency: the write carries the resourceVersion that
 * was checked (a forced server-side apply with metadata.resourceVersion, a DELETE with
 * preconditions), so a change that lands between the check and the write
 * is refused by the API server and looked at again. When another run or a
 * person changed or deleted the object since, nothing is written and
 * `changedSince` says what happened: a rollback never overwrites a newer
 * deploy.
 */
export async function rollback(
  client: KubeClient,
  previous: ExtensionResource | null,
  target: { namespace: string; name: string; applied: ExtensionResource },
  fieldManager = FIELD_MANAGER,
): Promise<RollbackResult> {
  const { namespace, name, applied } = target;
  const kind = applied.kind;
  const action = previous ? 'restored' : 'deleted';
  try {
    for (let attempt = 1; ; attempt++) {
      const live = await getLiveObject(client, kind, namespace, name);
      if (!live) {
        // Gone: nothing of this run is left to undo, and someone else's delete is not undone either.
        return previous
          ? { action, ok: false, changedSince: `someone else deleted ${namespace}/${name} after this run applied it` }
          : { action, ok: true };
      }
      const changed = changedSinceApply(applied, live);
      if (changed) return { action, ok: false, changedSince: changed };
      const checked = live.metadata.resourceVersion;
      if (!previous) {
        const res = await client.send({
          method: 'DELETE',
          path: pluginPath(kind, namespace, name),
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: live.metadata.uid, resourceVersion: checked } },
        });
        if (res.status === 200 || res.status === 202 || res.status === 404) return { action, ok: true };
        if (res.status === 409 && attempt < 3) continue;
        throw client.apiError(res, purpose(kind, 'delete', namespace, name));
      }
      // A forced server-side apply of the previous object, by the manager
      // that applied this run's: it takes back every field this run set and
      // drops the ones the previous object did not have, and it leaves no
      // second (Update) entry for our manager that would make the next apply
      // conflict with ourselves. metadata.resourceVersion (the checked one)
      // makes it conditional: the API server refuses it with 409 if the
      // object changed in between.
      const body = {
        apiVersion: WASMPLUGIN_API_VERSION,
        kind,
        metadata: {
          name,
          namespace,
          resourceVersion: checked,
          ...(previous.metadata.labels ? { labels: previous.metadata.labels } : {}),
          ...(previous.metadata.annotations ? { annotations: previous.metadata.annotations } : {}),
        },
        spec: previous.spec,
      } as ExtensionResource;
      const res = await client.send({
        method: 'PATCH',
        path: pluginPath(kind, namespace, name),
        query: { fieldManager, force: true },
        body,
        contentType: 'application/apply-patch+yaml',
      });
      if (res.status === 200 || res.status === 201) return { action, ok: true, generation: res.body?.metadata?.generation };
      // Changed between the check and the write: look again (and refuse if it is no longer ours).
      if (res.status === 409 && attempt < 3) continue;
      throw client.apiError(res, purpose(kind, 'patch', namespace, name));
    }
  } catch (err) {
    return { action, ok: false, error: (err as Error).message };
  }
}
