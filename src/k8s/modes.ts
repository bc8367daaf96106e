// What the deploy stage can do. Kept apart from deploy.ts so that reading the
// inputs does not load the Kubernetes client: only the deploy stage needs it.
export const DEPLOY_MODES = ['dry-run', 'apply', 'delete'] as const;
export type DeployMode = (typeof DEPLOY_MODES)[number];
