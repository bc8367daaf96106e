// The test file (plugin/tests.yaml): cases the local Envoy test runs. The
// format is ours, documented in the README. Every mistake is reported with
// the file, line and the path of the field, before Envoy starts.
import * as fs from 'node:fs';
import YAML, { LineCounter, isMap, isSeq, type Document, type Node } from 'yaml';
import { UserError } from '../errors.js';

export interface CaseRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface CaseExpect {
  status?: number;
  /** Response headers: a string must match exactly; null means the header must be absent. */
  headers?: Record<string, string | null>;
  body?: string;
  bodyContains?: string[];
  /** Whether the upstream must (true) or must not (false) see the request. */
  upstream?: boolean;
  /** Headers the upstream must see (null: must not see). Implies upstream: true. */
  upstreamHeaders?: Record<string, string | null>;
  /** Envoy log lines that must appear: substrings, or /regular expressions/. */
  logs?: string[];
}

export interface TestCase {
  name: string;
  line: number;
  request: CaseRequest;
  expect: CaseExpect;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const CASE_KEYS = ['name', 'request', 'expect'];
const REQUEST_KEYS = ['method', 'path', 'headers', 'body'];
const EXPECT_KEYS = ['status', 'headers', 'body', 'bodyContains', 'upstream', 'logs'];

class FileError {
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  lineOf(path: Array<string | number>): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return 1;
  }

  fail(path: Array<string | number>, message: string): never {
    const where = path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
    throw new UserError(`${this.file}:${this.lineOf(path)}: ${where ? `${where}: ` : ''}${message}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(e: FileError, at: Array<string | number>, v: unknown, allowNull: boolean): Record<string, string | null> {
  if (!isPlainObject(v)) e.fail(at, 'must be a mapping of header names to values');
  const out: Record<string, string | null> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === null && allowNull) out[k.toLowerCase()] = null;
    else if (typeof val === 'string') out[k.toLowerCase()] = val;
    else if (typeof val === 'number' || typeof val === 'boolean') {
      e.fail([...at, k], `must be a string; quote it ("${String(val)}") so YAML does not read it as a ${typeof val}`);
    } else e.fail([...at, k], allowNull ? 'must be a string, or null for "must be absent"' : 'must be a string');
  }
  return out;
}

function checkKeys(e: FileError, at: Array<string | number>, v: Record<string, unknown>, known: string[]): void {
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) e.fail([...at, k], `unknown field; known fields here: ${known.join(', ')}`);
  }
}

/** Parses the text of a test file. `file` is used in messages only. */
export function parseCases(text: string, file: string): TestCase[] {
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const line = lines.linePos(err.pos[0]).line;
    throw new UserError(`${file}:${line}: not valid YAML: ${err.message.split('\n')[0]}`);
  }
  const e: FileError = new FileError(file, doc, lines);
  const root = doc.toJS() as unknown;
  if (!isPlainObject(root) || !Array.isArray(root.cases)) e.fail([], 'must be a mapping with a `cases:` list');
  checkKeys(e, [], root, ['cases']);
  const cases = root.cases as unknown[];
  if (cases.length === 0) e.fail(['cases'], 'has no cases; add at least one');
  const seq = doc.get('cases', true);
  const names = new Set<string>();

  return cases.map((c, i) => {
    const at = ['cases', i];
    if (!isPlainObject(c)) e.fail(at, 'must be a mapping with name, request and expect');
    checkKeys(e, at, c, CASE_KEYS);
    if (typeof c.name !== 'string' || !c.name.trim()) e.fail([...at, 'name'], 'is required: a short sentence saying what the case shows');
    if (names.has(c.name)) e.fail([...at, 'name'], `"${c.name}" is used by another case; names must be unique`);
    names.add(c.name);

    const r = c.request ?? {};
    if (!isPlainObject(r)) e.fail([...at, 'request'], 'must be a mapping (method, path, headers, body)');
    checkKeys(e, [...at, 'request'], r, REQUEST_KEYS);
    const method = r.method === undefined ? 'GET' : String(r.method).toUpperCase();
    if (!METHODS.includes(method)) e.fail([...at, 'request', 'method'], `must be one of ${METHODS.join(', ')}`);
    const reqPath = r.path === undefined ? '/' : r.path;
    if (typeof reqPath !== 'string' || !reqPath.startsWith('/')) e.fail([...at, 'request', 'path'], 'must be a path starting with /');
    const headers = r.headers === undefined ? {} : (stringMap(e, [...at, 'request', 'headers'], r.headers, false) as Record<string, string>);
    if (r.body !== undefined && typeof r.body !== 'string') e.fail([...at, 'request', 'body'], 'must be a string');

    if (!isPlainObject(c.expect)) e.fail([...at, 'expect'], 'is required: what must happen (status, headers, body, upstream, logs)');
    const x = c.expect;
    checkKeys(e, [...at, 'expect'], x, EXPECT_KEYS);
    const expect: CaseExpect = {};
    if (x.status !== undefined) {
      if (typeof x.status !== 'number' || !Number.isInteger(x.status) || x.status < 100 || x.status > 599) {
        e.fail([...at, 'expect', 'status'], 'must be an HTTP status code (100-599)');
      }
      expect.status = x.status;
    }
    if (x.headers !== undefined) expect.headers = stringMap(e, [...at, 'expect', 'headers'], x.headers, true);
    if (x.body !== undefined) {
      if (typeof x.body !== 'string') e.fail([...at, 'expect', 'body'], 'must be a string (the whole response body)');
      expect.body = x.body;
    }
    if (x.bodyContains !== undefined) {
      const list = Array.isArray(x.bodyContains) ? x.bodyContains : [x.bodyContains];
      if (!list.every((s) => typeof s === 'string')) e.fail([...at, 'expect', 'bodyContains'], 'must be a string or a list of strings');
      expect.bodyContains = list as string[];
    }
    if (x.upstream !== undefined) {
      if (typeof x.upstream === 'boolean') expect.upstream = x.upstream;
      else if (isPlainObject(x.upstream)) {
        checkKeys(e, [...at, 'expect', 'upstream'], x.upstream, ['headers']);
        expect.upstream = true;
        expect.upstreamHeaders = stringMap(e, [...at, 'expect', 'upstream', 'headers'], x.upstream.headers ?? {}, true);
      } else e.fail([...at, 'expect', 'upstream'], 'must be true, false, or a mapping with `headers:`');
    }
    if (x.logs !== undefined) {
      if (!Array.isArray(x.logs) || !x.logs.every((s) => typeof s === 'string')) e.fail([...at, 'expect', 'logs'], 'must be a list of strings (quote an entry that contains ": ")');
      for (const [j, s] of (x.logs as string[]).entries()) {
        if (s.startsWith('/') && s.endsWith('/') && s.length > 1) {
          try {
            new RegExp(s.slice(1, -1));
          } catch (err) {
            e.fail([...at, 'expect', 'logs', j], `is not a valid regular expression: ${(err as Error).message}`);
          }
        }
      }
      expect.logs = x.logs as string[];
    }
    if (Object.keys(expect).length === 0) e.fail([...at, 'expect'], 'checks nothing; give at least one of status, headers, body, bodyContains, upstream, logs');

    const node = isSeq(seq) ? seq.items[i] : undefined;
    const line = node && isMap(node) && node.range ? lines.linePos(node.range[0]).line : 1;
    return { name: c.name, line, request: { method, path: reqPath, headers, body: r.body as string | undefined }, expect };
  });
}

export function loadCases(file: string): TestCase[] {
  if (!fs.existsSync(file)) {
    throw new UserError(`input \`tests\`: ${file} does not exist; write test cases there (see the README's test-file format) or set tests to your file`);
  }
  return parseCases(fs.readFileSync(file, 'utf8'), file);
}

/** Whether a log text contains an expected line (substring, or /regex/). */
export function logMatches(log: string, expected: string): boolean {
  if (expected.length > 1 && expected.startsWith('/') && expected.endsWith('/')) {
    return new RegExp(expected.slice(1, -1), 'm').test(log);
  }
  return log.includes(expected);
}

export interface Response {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

function show(v: string | null | undefined): string {
  return v === undefined || v === null ? '(absent)' : JSON.stringify(v);
}

/**
 * Compares a response with a case's expectations on status, headers and
 * body: what the local test and the gateway verification both can see.
 * Returns one line per mismatch, expected against actual.
 */
export function compareResponse(expect: CaseExpect, actual: Response): string[] {
  const failures: string[] = [];
  if (expect.status !== undefined && actual.status !== expect.status) failures.push(`status: expected ${expect.status}, got ${actual.status}`);
  for (const [name, want] of Object.entries(expect.headers ?? {})) {
    const got = actual.headers[name];
    if (want === null ? got !== undefined : got !== want) failures.push(`response header ${name}: expected ${show(want)}, got ${show(got)}`);
  }
  if (expect.body !== undefined && actual.body !== expect.body) failures.push(`body: expected ${show(expect.body)}, got ${show(actual.body.slice(0, 500))}`);
  for (const text of expect.bodyContains ?? []) {
    if (!actual.body.includes(text)) failures.push(`body: expected to contain ${show(text)}, got ${show(actual.body.slice(0, 500))}`);
  }
  return failures;
}
