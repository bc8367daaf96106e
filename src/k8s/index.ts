// The deploy stage's library: see deploy() for the entry point.
export { loadKubeconfig, type KubeconfigOptions, type LoadedKubeconfig } from './kubeconfig.js';
export { KubeClient, type KubeClientOptions, type KubeRequest, type KubeResponse, type RequestPurpose } from './client.js';
export * from './wasmplugin.js';
export { diffObjects, diffView, sameContent } from './diff.js';
export { verify, checkAnswer, formatVerifyReport, type VerifyCase, type VerifyOptions, type VerifyReport, type VerifyCaseResult } from './verify.js';
export { inspectGatewayPods, podSelectors, parseFetchCounts, wasmFailureLines, type PodCheck, type FetchCounts } from './pods.js';
export {
  deploy,
  rollback,
  getWasmPlugin,
  checkWasmPluginApi,
  applyPullSecret,
  DeployVerificationError,
  DEPLOY_MODES,
  FIELD_MANAGER,
  type DeployMode,
  type DeployOutcome,
  type DeployOptions,
  type DeployResult,
  type GatewayCheckOptions,
  type PullSecretOptions,
  type RollbackResult,
} from './deploy.js';
export { formatDeploySummary } from './summary.js';
