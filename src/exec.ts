// The one place that runs external commands. Every stage goes through it, so
// a failing command always becomes an Error carrying the tail of its output,
// and secrets are handed over on stdin, never on the command line.
import * as actionsExec from '@actions/exec';
import { UserError } from './errors.js';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Written to the command's stdin (use it for secrets). */
  input?: string | Buffer;
  /** Print the command's output to the log as it runs (default true). */
  echo?: boolean;
  /** Do not fail on a non-zero exit; the caller looks at `exitCode`. */
  allowFailure?: boolean;
  /** What the command is for, used in the error message ("compile the plugin"). */
  purpose?: string;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const TAIL_LINES = 40;

/** The last `lines` lines of a text. */
export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

export async function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const echo = options.echo ?? true;
  let result: actionsExec.ExecOutput;
  try {
    result = await actionsExec.getExecOutput(command, args, {
      cwd: options.cwd,
      // Never the action's inputs: a child process has no business with its secrets.
      env: childEnv(options.env),
      input: options.input === undefined ? undefined : Buffer.from(options.input),
      silent: !echo,
      ignoreReturnCode: true,
    });
  } catch (err) {
    // @actions/exec throws when the program cannot be started at all.
    throw new UserError(
      `could not ${options.purpose ?? `run ${command}`}: ${command} was not found or could not be started (${(err as Error).message})`,
    );
  }
  if (result.exitCode !== 0 && !options.allowFailure) {
    const output = tail([result.stdout, result.stderr].filter((s) => s.trim()).join('\n'));
    throw new UserError(
      `could not ${options.purpose ?? `run ${command}`}: \`${[command, ...args].join(' ')}\` exited with ${result.exitCode}`,
      output,
    );
  }
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

/**
 * The environment for programs the action starts (a package manager, the
 * plugin's own build script, the compiler): the process's own, without the
 * action's inputs (ASM_WASM_INPUTS, INPUT_*), which carry its secrets.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'ASM_WASM_INPUTS' || k === 'ASM_WASM_STEPS' || k.startsWith('INPUT_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}
