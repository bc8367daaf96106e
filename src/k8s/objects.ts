// The deploy stage's requests on the API server: is the kind served, the
// live object, a server-side apply (or its dry run), the image pull secret.
import { UserError } from '../errors.js';
import type { KubeClient, RequestPurpose } from './client.js';
import {
  KIND_RESOURCE,
  WASMPLUGIN_API_VERSION,
  WASMPLUGIN_GROUP,
  WASMPLUGIN_VERSION,
  type ExtensionResource,
  type ResourceKind,
} from './wasmplugin.js';

export const FIELD_MANAGER = 'asm-wasm-action';

export type DeployOutcome = 'created' | 'configured' | 'unchanged' | 'deleted';

/** Registry credentials for the image pull secret (type kubernetes.io/dockerconfigjson). */
export interface PullSecretOptions {
  /** Secret name; also used as spec.imagePullSecret when that is not set. */
  name: string;
  /** Registry host, e.g. `registry.cn-hangzhou.aliyuncs.com`. */
  registry: string;
  username: string;
  password: string;
}

export function pluginPath(kind: ResourceKind, namespace: string, name?: string): string {
  const base = `/apis/${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}/namespaces/${encodeURIComponent(namespace)}/${KIND_RESOURCE[kind]}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

export function purpose(kind: ResourceKind, verb: string, namespace: string, name?: string): RequestPurpose {
  return { verb, resource: `${KIND_RESOURCE[kind]}.${WASMPLUGIN_GROUP}`, namespace, name };
}

/** Fails with "is Istio or ASM installed?" when the server does not serve the kind. */
export async function checkResourceApi(client: KubeClient, kind: ResourceKind = 'WasmPlugin'): Promise<void> {
  const res = await client.send({ method: 'GET', path: `/apis/${WASMPLUGIN_GROUP}/${WASMPLUGIN_VERSION}` });
  const missing = () =>
    new UserError(
      `${client.where} does not serve ${WASMPLUGIN_API_VERSION} ${kind} (the ${kind} CRD is not installed): is Istio or ASM installed in this cluster? ` +
        (kind === 'TrafficExtension'
          ? 'TrafficExtension is served by newer Istio releases (the 1.31 line) only; deploy a WasmPlugin (drop `kind: TrafficExtension` from wasmplugin.yaml and put the spec.wasm fields under spec) to an older one. '
          : '') +
        'For Alibaba Cloud Service Mesh, use the kubeconfig of the mesh instance (its control plane), not the one of the data-plane cluster',
    );
  if (res.status === 404) throw missing();
  if (res.status !== 200) throw client.apiError(res, { verb: 'get', resource: `API group ${WASMPLUGIN_API_VERSION}` });
  const resources: { name?: string }[] = res.body?.resources ?? [];
  if (!resources.some((r) => r.name === KIND_RESOURCE[kind])) throw missing();
}

/** The live WasmPlugin or TrafficExtension, or null. */
export async function getLiveObject(client: KubeClient, kind: ResourceKind, namespace: string, name: string): Promise<ExtensionResource | null> {
  const res = await client.send({ method: 'GET', path: pluginPath(kind, namespace, name) });
  if (res.status === 404) return null;
  if (res.status !== 200) throw client.apiError(res, purpose(kind, 'get', namespace, name));
  return res.body as ExtensionResource;
}

/** Server-side apply of any object; `dryRun` asks the server to check it without storing it. */
export async function serverSideApply(
  client: KubeClient,
  path: string,
  object: object,
  what: RequestPurpose,
  options: { fieldManager: string; force: boolean; dryRun: boolean },
): Promise<any> {
  const res = await client.send({
    method: 'PATCH',
    path,
    query: { fieldManager: options.fieldManager, force: options.force, dryRun: options.dryRun ? 'All' : undefined },
    body: object,
    contentType: 'application/apply-patch+yaml',
  });
  if (res.status === 200 || res.status === 201) return res.body;
  if (res.status === 404 && res.body?.details?.kind === 'namespaces') {
    throw new UserError(`namespace "${what.namespace}" does not exist on ${client.where}: create it, or set the namespace input`);
  }
  throw client.apiError(res, what);
}

function dockerConfigJson(secret: PullSecretOptions): string {
  const auth = Buffer.from(`${secret.username}:${secret.password}`).toString('base64');
  return JSON.stringify({ auths: { [secret.registry]: { username: secret.username, password: secret.password, auth } } });
}

/** What applyPullSecret did, and what was there before (for a rollback). */
export interface PullSecretChange {
  result: DeployOutcome;
  /** The Secret before the apply: its uid, type and data (undefined when this run created it). */
  previous?: { uid?: string; type?: string; data?: Record<string, string> };
  /** The uid of the Secret after the apply. */
  uid?: string;
}

/** Creates or updates the image pull secret; returns what happened. */
export async function applyPullSecret(
  client: KubeClient,
  namespace: string,
  secret: PullSecretOptions,
  options: { fieldManager: string; force: boolean; dryRun: boolean; setSecret: (v: string) => void },
): Promise<PullSecretChange> {
  const json = dockerConfigJson(secret);
  const data = Buffer.from(json).toString('base64');
  for (const value of [secret.password, Buffer.from(`${secret.username}:${secret.password}`).toString('base64'), json, data]) {
    options.setSecret(value);
  }
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secret.name)}`;
  const what = { verb: 'patch', resource: 'secrets', namespace, name: secret.name };
  const before = await client.send({ method: 'GET', path });
  if (before.status !== 200 && before.status !== 404) throw client.apiError(before, { ...what, verb: 'get' });
  const after = await serverSideApply(
    client,
    path,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secret.name, namespace },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': data },
    },
    what,
    options,
  );
  const uid = after?.metadata?.uid;
  if (before.status === 404) return { result: 'created', uid };
  const same = before.body?.data?.['.dockerconfigjson'] === after?.data?.['.dockerconfigjson'] && before.body?.type === after?.type;
  const previous = { uid: before.body?.metadata?.uid, type: before.body?.type, data: before.body?.data };
  return { result: same ? 'unchanged' : 'configured', previous, uid };
}

/**
 * Puts the pull secret back as it was before applyPullSecret: deletes the one
 * this run created (only that object: uid precondition), or restores the data
 * it replaced. Returns what it did, in words.
 */
export async function restorePullSecret(client: KubeClient, namespace: string, name: string, change: PullSecretChange, fieldManager: string): Promise<string> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
  if (change.result === 'unchanged') return 'unchanged, nothing to restore';
  if (change.result === 'created') {
    const res = await client.send({
      method: 'DELETE',
      path,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(change.uid ? { preconditions: { uid: change.uid } } : {}) },
    });
    if (res.status === 409) return 'not deleted: it was replaced since this run created it';
    if (res.status !== 200 && res.status !== 202 && res.status !== 404) throw client.apiError(res, { verb: 'delete', resource: 'secrets', namespace, name });
    return 'deleted (this run created it)';
  }
  await serverSideApply(
    client,
    path,
    { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: change.previous?.type ?? 'kubernetes.io/dockerconfigjson', data: change.previous?.data ?? {} },
    { verb: 'patch', resource: 'secrets', namespace, name },
    { fieldManager, force: true, dryRun: false },
  );
  return 'restored to its previous data';
}
