// The deploy stage's entry, loaded on demand by src/stages/deploy/ (the only
// importer): see deploy() in deploy.ts. Everything else in this folder is
// imported from its own file.
export { deploy, DeployVerificationError } from './deploy.js';
