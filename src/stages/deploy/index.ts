// The deploy stage: the WasmPlugin (or TrafficExtension) the test stage ran,
// with the pushed image's url, checked against verify-key, then dry-run,
// applied or deleted; after an apply, verified and rolled back on failure.
import type { KeyObject } from 'node:crypto';
import { UserError } from '../../errors.js';
import type { Inputs } from '../../inputs.js';
import type { deploy as Deploy, DeployResult, PullSecretOptions } from '../../k8s/deploy.js';
import { loadCases } from '../../localtest/cases.js';
import { resolvePlugin, type ResolvedPlugin } from '../../plugin/index.js';
import { imageOfUrl, KeyError, openRepository, parsePublicKey, parseTrustedRoot, SignatureVerificationError, verifyImage, verifyImageKeyless, type KeylessPolicy } from '../../sign/index.js';
import { registryLogin, spec, type PluginSpec, type Results, type Stage, type StageContext } from '../stage.js';
import { renderDeploy } from './render.js';

export interface SignatureCheck {
  /** registry/repository@digest */
  image: string;
  /** The signature image that held the verifying signature. */
  ref: string;
  checked: number;
  /** keyless: the identity and issuer the certificate named. */
  identity?: { identity: string; issuer: string };
}

/**
 * What happened: the signature checked (verify-key), the deploy's result
 * (also that of a failed verification, with its rollback), and the error
 * that stopped the stage after the signature check, if any.
 */
export interface DeployStageRecord {
  verified?: SignatureCheck;
  result?: DeployResult;
  error?: Error;
}

/**
 * verify-key (or verify-identity, keyless): the image the WasmPlugin will
 * fetch must carry a cosign signature that verifies with the key (or a
 * certificate for that identity from the trusted root, logged in Rekor), for
 * exactly that digest; otherwise the stage stops here and nothing reaches the
 * cluster.
 */
async function verifyBeforeApply(ctx: StageContext, plugin: ResolvedPlugin): Promise<SignatureCheck> {
  const { inputs } = ctx;
  const input = inputs.verifyKeyless ? 'verify-identity' : 'verify-key';
  const url = plugin.wasm.url ?? '';
  const image = imageOfUrl(url);
  if (!image) throw new UserError(`input \`${input}\` needs an oci:// image to verify, but the url to apply is ${url || 'empty'}; nothing was sent to the cluster`);
  const digest = image.digest ?? (plugin.wasm.sha256 ? `sha256:${plugin.wasm.sha256.replace(/^sha256:/, '')}` : undefined);
  if (!digest) throw new UserError(`input \`${input}\` needs the image pinned by digest (a url with @sha256:…, or sha256), but ${url} names a tag that could move after the check; nothing was sent to the cluster`);
  let key: KeyObject | undefined;
  let policy: KeylessPolicy | undefined;
  try {
    if (inputs.verifyKeyless) {
      const k = inputs.verifyKeyless;
      policy = { identity: k.identity, issuer: k.issuer, trustedRoot: parseTrustedRoot(k.trustedRoot) };
    } else {
      key = parsePublicKey(inputs.verifyKey!);
    }
  } catch (err) {
    if (err instanceof KeyError) throw new UserError(`input \`verify-key\`: ${err.message}`);
    if (err instanceof UserError && inputs.verifyKeyless) throw new UserError(`input \`verify-trusted-root\` (${inputs.verifyKeyless.trustedRootFile}): ${err.message}`);
    throw err;
  }
  const v = await ctx.group(`Verify the signature of ${image.registry}/${image.repository}@${digest}`, async () => {
    const client = await openRepository({ ...registryLogin(inputs, image.registry), registry: image.registry, repository: image.repository });
    try {
      return policy ? await verifyImageKeyless({ client, digest, policy, log: ctx.log }) : await verifyImage({ client, digest, key: key!, log: ctx.log });
    } catch (err) {
      if (err instanceof SignatureVerificationError) throw new UserError(`${err.message}; nothing was sent to the cluster`);
      throw err;
    } finally {
      client.close();
    }
  });
  return {
    image: `${image.registry}/${image.repository}@${digest}`,
    ref: v.ref,
    checked: v.checked,
    ...(policy ? { identity: { identity: policy.identity, issuer: policy.issuer } } : {}),
  };
}

/**
 * The WasmPlugin to deploy: the same file and inputs as the model the test
 * stage ran, with the pushed image's url and digest (or the \`url\` input).
 */
export function deployPlugin(inputs: Inputs, results: Results, spec: PluginSpec): ResolvedPlugin {
  if (inputs.deployMode === 'delete') return spec.model;
  const pushed = results.push?.url;
  if (!inputs.url && pushed?.startsWith('oci-layout://')) {
    throw new UserError('the push stage wrote an OCI layout, which no gateway can fetch: set `image` to push to a registry, or set `url`');
  }
  if (!inputs.url && !pushed && !spec.file.manifest.spec?.url) {
    throw new UserError('no url to deploy: run the push stage with `image` set (its pinned oci:// url is used), or set `url`');
  }
  return resolvePlugin(spec.file, spec.overrides, {
    pluginDir: inputs.pluginDir,
    pushed: pushed ? { url: pushed, digest: results.push?.digest } : undefined,
    requireUrl: true,
  });
}

function pullSecretOf(inputs: Inputs, plugin: ResolvedPlugin): PullSecretOptions | undefined {
  if (!inputs.createPullSecret) return undefined;
  const secretName = plugin.wasm.imagePullSecret;
  if (!secretName) throw new UserError('input `create-pull-secret` needs `image-pull-secret`: the name of the Secret to create');
  if (!inputs.image || !inputs.registryUsername || !inputs.registryPassword) {
    throw new UserError('input `create-pull-secret` needs `image`, `registry-username` and `registry-password` to write the pull secret');
  }
  return { name: secretName, registry: inputs.image.registry, username: inputs.registryUsername, password: inputs.registryPassword };
}

export async function runDeploy(ctx: StageContext): Promise<DeployStageRecord> {
  const { inputs } = ctx;
  if (!inputs.kubeconfig) {
    throw new UserError('input `kubeconfig` is empty: pass the kubeconfig secret of the API server that holds WasmPlugins (for ASM, the mesh instance\'s), e.g. kubeconfig: ${{ secrets.ASM_KUBECONFIG }}');
  }
  const plugin = deployPlugin(inputs, ctx.results, spec(ctx));
  // Before anything is sent to the cluster: the image must carry a signature by verify-key.
  const verified = (inputs.verifyKey || inputs.verifyKeyless) && inputs.deployMode !== 'delete' ? await verifyBeforeApply(ctx, plugin) : undefined;
  // The Kubernetes client (most of the bundle) is loaded by this stage alone: every other stage starts faster.
  const k8s = await import('../../k8s/index.js');
  try {
    return { verified, result: await apply(ctx, plugin, k8s.deploy) };
  } catch (err) {
    // A failed verification still has a report and a rollback to show; a signature checked is shown whatever came after.
    if (err instanceof k8s.DeployVerificationError) return { verified, result: err.result, error: err };
    if (verified) return { verified, error: err as Error };
    throw err;
  }
}

async function apply(ctx: StageContext, plugin: ResolvedPlugin, deploy: typeof Deploy): Promise<DeployResult> {
  const { inputs } = ctx;
  const { namespace, name } = plugin.object.metadata;
  const pullSecret = pullSecretOf(inputs, plugin);
  const cases = inputs.verifyUrl ? loadCases(inputs.tests) : undefined;
  const title = `${inputs.deployMode === 'dry-run' ? 'Dry-run' : inputs.deployMode === 'delete' ? 'Delete' : 'Apply'} ${plugin.object.kind} ${namespace}/${name}`;
  return ctx.group(title, () =>
    deploy({
      kubeconfig: inputs.kubeconfig!,
      context: inputs.context,
      mode: inputs.deployMode,
      plugin,
      force: inputs.forceConflicts,
      pullSecret,
      verify:
        inputs.verifyUrl && cases
          ? {
              url: inputs.verifyUrl,
              cases,
              timeoutMs: inputs.verifyTimeoutSeconds * 1000,
              istio:
                inputs.gatewayAdminUrl || inputs.gatewayStatusUrl
                  ? { adminUrl: inputs.gatewayAdminUrl, statusUrl: inputs.gatewayStatusUrl, istiodUrl: inputs.istiodUrl }
                  : undefined,
            }
          : undefined,
      gateway: inputs.clusterKubeconfig ? { kubeconfig: inputs.clusterKubeconfig } : undefined,
    }),
  );
}

export const deployStage: Stage<DeployStageRecord> = {
  run: runDeploy,
  render: renderDeploy,
  keep: (results, record) => {
    if (record.result && !record.error) results.deploy = record.result;
  },
};
