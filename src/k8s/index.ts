// The deploy stage's entry, loaded on demand by src/stages.ts (the only
// importer): see deploy() in deploy.ts. Everything else in this folder is
// imported from its own file.
export { deploy, DeployVerificationError } from './deploy.js';
export { formatDeploySummary } from './summary.js';
