// The log the domain modules write to. They never talk to the runner: the
// one module that does (src/github.ts) points this sink at the runner's
// commands when the action starts. The default writes plain lines, which is
// what the CLI shows and what the runner's log is made of anyway.
//
// A sink rather than a logger handed down every call: the stages call into
// chains several modules deep (push → registry → auth), and every link
// would carry the parameter only to pass it on.

export interface Logger {
  info(line: string): void;
  warning(line: string): void;
}

const plain: Logger = {
  info: (line) => process.stdout.write(`${line}\n`),
  warning: (line) => process.stdout.write(`warning: ${line}\n`),
};

let sink: Logger = plain;

/** Where log lines go from now on (the runner's commands, or a test's collector). Returns the previous sink. */
export function setLogger(next: Logger): Logger {
  const prev = sink;
  sink = next;
  return prev;
}

/** The domain modules' log. */
export const log: Logger = {
  info: (line) => sink.info(line),
  warning: (line) => sink.warning(line),
};
