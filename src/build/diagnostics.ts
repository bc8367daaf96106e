// The compiler's diagnostics, from every line of AssemblyScript. A diagnostic
// is a head line, an excerpt of the source, and where it is:
//   0.14–0.19   ERROR TS2304: Cannot find name 'x'.
//                   x;
//                   ^
//                in assembly/index.ts(12,5)
//   0.20+       ERROR TS2304: Cannot find name 'x'.
//                  :
//               12 │ x;
//                  │ ^
//                  └─ in assembly/index.ts(12,5)
// A diagnostic may name further places ("in ~lib/…" for the standard library);
// the first one is where it is reported.

export interface Diagnostic {
  level: 'error' | 'warning';
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const HEAD = /^(ERROR|WARNING)\s+(\w+):\s*(.*)$/;
const WHERE = /^\s*(?:[└╰`]─+\s*)?in\s+(.+?)\((\d+),(\d+)\)\s*$/;

export function parseDiagnostics(output: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  let current: Diagnostic | undefined;
  for (const raw of output.split('\n')) {
    // asc colours its diagnostics; the escape sequences are dropped before parsing.
    const line = raw.replace(ANSI, '');
    const head = HEAD.exec(line.trim());
    if (head) {
      current = { level: head[1] === 'ERROR' ? 'error' : 'warning', code: head[2], message: head[3] };
      out.push(current);
      continue;
    }
    const where = WHERE.exec(line);
    if (where && current && current.file === undefined) {
      current.file = where[1];
      current.line = Number(where[2]);
      current.column = Number(where[3]);
    }
  }
  return out;
}

/** Diagnostics in the plugin's own files (not the compiler's standard library). */
export function inPluginFiles(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.filter((d) => d.file && !d.file.startsWith('~lib/'));
}

/** One line per diagnostic, "file:line:col error CODE: message", for the log and the error message. */
export function formatDiagnostic(d: Diagnostic, prefix = ''): string {
  const where = d.file ? `${prefix}${d.file}${d.line !== undefined ? `:${d.line}:${d.column}` : ''} ` : '';
  return `${where}${d.level} ${d.code}: ${d.message}`;
}

/** "2 errors, 1 warning" */
export function countDiagnostics(diagnostics: Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.level === 'error').length;
  const warnings = diagnostics.length - errors;
  const part = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [errors ? part(errors, 'error') : '', warnings ? part(warnings, 'warning') : ''].filter(Boolean).join(', ') || 'no diagnostics';
}
