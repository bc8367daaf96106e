// How a stage talks to the person running it: log groups, outputs and
// annotations. In a workflow these are the runner's commands; on a laptop
// (no GITHUB_ACTIONS) they are plain lines, so the CLI's log stays readable.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as core from '@actions/core';
import type { Logger } from './log.js';

/** The runner's log commands: where the domain modules' log (src/log.ts) goes in a workflow. */
export const runnerLog: Logger = { info: (line) => core.info(line), warning: (line) => core.warning(line) };

export function inActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/** Runs `fn` inside a collapsible log group; the group closes even on error. */
export async function group<T>(title: string, fn: () => Promise<T>): Promise<T> {
  if (inActions()) return core.group(title, fn);
  core.info(`\n== ${title}`);
  return fn();
}

/** Outputs set by this process, in order (the CLI prints them). */
export const outputs: Array<[string, string]> = [];

export function setOutput(name: string, value: string | number | boolean): void {
  const text = String(value);
  outputs.push([name, text]);
  if (process.env.GITHUB_OUTPUT) core.setOutput(name, text);
  core.info(`output ${name}=${text}`);
}

export interface Location {
  file: string;
  line?: number;
  column?: number;
}

/** An error annotation on a file and line (a compiler diagnostic). */
export function annotate(level: 'error' | 'warning', message: string, at: Location): void {
  if (inActions()) {
    const props = { file: at.file, startLine: at.line, startColumn: at.column };
    if (level === 'error') core.error(message, props);
    else core.warning(message, props);
    return;
  }
  const where = [at.file, at.line, at.column].filter((x) => x !== undefined).join(':');
  core.info(`${where}: ${level}: ${message}`);
}

/** A new temporary directory under RUNNER_TEMP (the runner empties it after the job). */
export function makeTempDir(prefix: string): string {
  const root = process.env.RUNNER_TEMP || os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  return fs.mkdtempSync(path.join(root, `asm-wasm-${prefix}-`));
}

/**
 * Hides a secret in the workflow log. Outside Actions it does nothing: there
 * the command would print the secret itself.
 */
export function maskSecret(value: string | undefined): void {
  if (value && inActions()) core.setSecret(value);
}
