/**
 * An error the user can fix: bad input, a plugin that fails to build or to
 * pass its tests, a registry or cluster that refuses us. Its message is
 * written for the person reading the job log and names what to change.
 * Anything else that reaches the top is a bug in this action and is reported
 * with its stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    /** Extra lines (a log tail, a diff) shown under the message. */
    readonly details?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
