// The test file (plugin/tests.yaml): cases the local Envoy test runs. The
// format is ours, documented in the README. Every mistake is reported with
// the file, line and the path of the field, before Envoy starts.
import * as fs from 'node:fs';
import YAML, { LineCounter, isMap, isSeq, type Document, type Node } from 'yaml';
import { DEFAULT_UPSTREAM_CLUSTER as DEFAULT_UPSTREAM } from '../envoy/bootstrap.js';
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
  /** How many calls each named fake upstream must receive during the case. */
  calls?: Record<string, number>;
}

export interface TestCase {
  name: string;
  line: number;
  request: CaseRequest;
  expect: CaseExpect;
}

/** What a local fake upstream answers. */
export interface FakeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** gRPC only: the grpc-status trailer. */
  grpcStatus?: number;
}

/**
 * A named cluster the plugin calls (dispatch_http_call, gRPC): either a local
 * fake the test stage starts, with canned answers, or an existing service.
 */
export type UpstreamSpec =
  | { kind: 'fake'; name: string; line: number; grpc: boolean; answer: FakeAnswer; paths: Record<string, FakeAnswer> }
  | { kind: 'address'; name: string; line: number; grpc: boolean; host: string; port: number };

/** A test file: its cases, the upstreams it declares, and the line of `cases:`. */
export interface TestFile {
  cases: TestCase[];
  upstreams: Record<string, UpstreamSpec>;
  line: number;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const CASE_KEYS = ['name', 'request', 'expect'];
const REQUEST_KEYS = ['method', 'path', 'headers', 'body'];
const EXPECT_KEYS = ['status', 'headers', 'body', 'bodyContains', 'upstream', 'logs', 'calls'];
const FAKE_KEYS = ['status', 'headers', 'body', 'paths', 'grpc', 'grpcStatus'];
const ANSWER_KEYS = ['status', 'headers', 'body', 'grpcStatus'];
const ADDRESS_KEYS = ['address', 'grpc'];
/** Envoy cluster names the file may use; `upstream` is the test's own. */
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

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

function parseAnswer(e: FileError, at: Array<string | number>, v: Record<string, unknown>, base: FakeAnswer, grpc: boolean): FakeAnswer {
  const answer: FakeAnswer = { ...base, headers: { ...base.headers } };
  if (v.status !== undefined) {
    if (typeof v.status !== 'number' || !Number.isInteger(v.status) || v.status < 100 || v.status > 599) e.fail([...at, 'status'], 'must be an HTTP status code (100-599)');
    answer.status = v.status;
  }
  if (v.headers !== undefined) answer.headers = { ...answer.headers, ...(stringMap(e, [...at, 'headers'], v.headers, false) as Record<string, string>) };
  if (v.body !== undefined) {
    if (typeof v.body !== 'string') e.fail([...at, 'body'], 'must be a string');
    answer.body = v.body;
  }
  if (v.grpcStatus !== undefined) {
    if (!grpc) e.fail([...at, 'grpcStatus'], 'is for a gRPC upstream only; add `grpc: true` to the upstream');
    if (typeof v.grpcStatus !== 'number' || !Number.isInteger(v.grpcStatus) || v.grpcStatus < 0 || v.grpcStatus > 16) e.fail([...at, 'grpcStatus'], 'must be a gRPC status code (0-16)');
    answer.grpcStatus = v.grpcStatus;
  }
  return answer;
}

function parseUpstreams(e: FileError, v: unknown): Record<string, UpstreamSpec> {
  const at = ['upstreams'];
  if (!isPlainObject(v)) e.fail(at, 'must be a mapping of cluster names to a fake answer (status, headers, body, paths) or `address: host:port`');
  const out: Record<string, UpstreamSpec> = {};
  for (const [name, u] of Object.entries(v)) {
    const here = [...at, name];
    if (!CLUSTER_NAME.test(name)) e.fail(here, 'is not a usable cluster name: letters, digits, ".", "_" and "-" only');
    if (name === DEFAULT_UPSTREAM) e.fail(here, `"${DEFAULT_UPSTREAM}" is the cluster every test request goes to; give this one another name`);
    const spec = u ?? {};
    if (!isPlainObject(spec)) e.fail(here, 'must be a mapping: a fake answer (status, headers, body, paths) or `address: host:port`');
    if (spec.grpc !== undefined && typeof spec.grpc !== 'boolean') e.fail([...here, 'grpc'], 'must be true or false');
    const grpc = spec.grpc === true;
    const line = e.lineOf(here);
    if (spec.address !== undefined) {
      checkKeys(e, here, spec, ADDRESS_KEYS);
      const m = typeof spec.address === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(spec.address) : null;
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) e.fail([...here, 'address'], 'must be host:port, e.g. 10.0.0.7:8080, authz.local:9000 or [::1]:8080');
      out[name] = { kind: 'address', name, line, grpc, host: m[1].replace(/^\[|\]$/g, ''), port };
      continue;
    }
    checkKeys(e, here, spec, FAKE_KEYS);
    const answer = parseAnswer(e, here, spec, { status: 200, headers: {}, body: '' }, grpc);
    const paths: Record<string, FakeAnswer> = {};
    if (spec.paths !== undefined) {
      if (!isPlainObject(spec.paths)) e.fail([...here, 'paths'], 'must be a mapping of paths (/...) to answers (status, headers, body)');
      for (const [p, a] of Object.entries(spec.paths)) {
        if (!p.startsWith('/')) e.fail([...here, 'paths', p], 'must be a path starting with /');
        if (!isPlainObject(a)) e.fail([...here, 'paths', p], 'must be a mapping: status, headers, body');
        checkKeys(e, [...here, 'paths', p], a, grpc ? ANSWER_KEYS : ANSWER_KEYS.filter((k) => k !== 'grpcStatus'));
        paths[p] = parseAnswer(e, [...here, 'paths', p], a, answer, grpc);
      }
    }
    out[name] = { kind: 'fake', name, line, grpc, answer, paths };
  }
  return out;
}

/** Parses the text of a test file. `file` is used in messages only. */
export function parseTestFile(text: string, file: string): TestFile {
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
  checkKeys(e, [], root, ['cases', 'upstreams']);
  const upstreams = root.upstreams === undefined ? {} : parseUpstreams(e, root.upstreams);
  const cases = root.cases as unknown[];
  if (cases.length === 0) e.fail(['cases'], 'has no cases; add at least one');
  const seq = doc.get('cases', true);
  const names = new Set<string>();

  const list = cases.map((c, i): TestCase => {
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
    if (x.calls !== undefined) {
      if (!isPlainObject(x.calls)) e.fail([...at, 'expect', 'calls'], 'must be a mapping of upstream names (from `upstreams:`) to call counts');
      const calls: Record<string, number> = {};
      for (const [name, n] of Object.entries(x.calls)) {
        const u = upstreams[name];
        if (!u) {
          const known = Object.values(upstreams).filter((d) => d.kind === 'fake').map((d) => d.name);
          e.fail([...at, 'expect', 'calls', name], `is not an upstream this file declares${known.length ? `; declared fakes: ${known.join(', ')}` : '; declare it under the top-level `upstreams:`'}`);
        }
        if (u.kind !== 'fake') e.fail([...at, 'expect', 'calls', name], 'is a real service (`address:`); only a local fake\'s calls can be counted');
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) e.fail([...at, 'expect', 'calls', name], 'must be a whole number of calls (0 or more)');
        calls[name] = n;
      }
      expect.calls = calls;
    }
    if (Object.keys(expect).length === 0) e.fail([...at, 'expect'], 'checks nothing; give at least one of status, headers, body, bodyContains, upstream, logs, calls');

    const node = isSeq(seq) ? seq.items[i] : undefined;
    const line = node && isMap(node) && node.range ? lines.linePos(node.range[0]).line : 1;
    return { name: c.name, line, request: { method, path: reqPath, headers, body: r.body as string | undefined }, expect };
  });
  return { cases: list, upstreams, line: e.lineOf(['cases']) };
}

/** The cases alone (a file's upstreams matter only to the local test). */
export function parseCases(text: string, file: string): TestCase[] {
  return parseTestFile(text, file).cases;
}

export function loadTestFile(file: string): TestFile {
  if (!fs.existsSync(file)) {
    throw new UserError(`input \`tests\`: ${file} does not exist; write test cases there (see the README's test-file format) or set tests to your file`);
  }
  return parseTestFile(fs.readFileSync(file, 'utf8'), file);
}

export function loadCases(file: string): TestCase[] {
  return loadTestFile(file).cases;
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
