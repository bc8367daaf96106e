// A readable diff between the live WasmPlugin and the one being applied: the
// parts a user controls (labels, annotations, spec) as YAML, line by line.
// pluginConfig values are hidden (they are often secrets, and the diff goes
// to the job summary): each key shows as `(hidden)`, and as
// `(hidden, changed)` on the new side when its value changed.
import YAML from 'yaml';
import { HIDDEN, HIDDEN_CHANGED } from '../plugin/model.js';

/** The parts of an object a diff shows; server-managed metadata and status are left out. */
export function diffView(object: { metadata?: Record<string, any>; spec?: unknown } | null | undefined): Record<string, unknown> | null {
  if (!object) return null;
  const metadata: Record<string, unknown> = {};
  const labels = object.metadata?.labels;
  const annotations = object.metadata?.annotations;
  if (labels && Object.keys(labels).length) metadata.labels = sortKeys(labels);
  if (annotations && Object.keys(annotations).length) {
    // kubectl's last-applied copy repeats the whole object: leave it out.
    const shown = Object.fromEntries(
      Object.entries(annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'),
    );
    if (Object.keys(shown).length) metadata.annotations = sortKeys(shown);
  }
  return { ...(Object.keys(metadata).length ? { metadata } : {}), spec: sortKeys(object.spec ?? {}) };
}

function sortKeys(value: unknown): any {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

type View = Record<string, unknown> | null;

/** The two views with every pluginConfig value replaced, keeping which keys were added, removed or changed. */
export function hidePluginConfigValues(before: View, after: View): [View, View] {
  const configOf = (v: View) => ((v?.spec as Record<string, unknown> | undefined)?.pluginConfig ?? undefined) as Record<string, unknown> | undefined;
  const a = configOf(before);
  const b = configOf(after);
  const isMap = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
  const hide = (view: View, config: Record<string, unknown> | undefined, other: Record<string, unknown> | undefined, newSide: boolean): View => {
    if (!view || config === undefined) return view;
    const shown: unknown = isMap(config)
      ? Object.fromEntries(
          Object.keys(config).map((k) => {
            const changed = newSide && isMap(other) && k in other && JSON.stringify(other[k]) !== JSON.stringify(config[k]);
            return [k, changed ? HIDDEN_CHANGED : HIDDEN];
          }),
        )
      : HIDDEN;
    return { ...view, spec: { ...(view.spec as Record<string, unknown>), pluginConfig: shown } };
  };
  return [hide(before, a, b, false), hide(after, b, a, true)];
}

function toLines(view: Record<string, unknown> | null): string[] {
  if (!view) return [];
  return YAML.stringify(view, { lineWidth: 0 }).trimEnd().split('\n');
}

/** True when the two objects have the same labels, annotations and spec. */
export function sameContent(a: Parameters<typeof diffView>[0], b: Parameters<typeof diffView>[0]): boolean {
  return JSON.stringify(diffView(a)) === JSON.stringify(diffView(b));
}

/**
 * A unified diff (`-` live, `+` new, 3 lines of context) of labels,
 * annotations and spec; '' when they are the same. `before` null means the
 * object does not exist yet, `after` null that it is deleted.
 */
export function diffObjects(
  before: Parameters<typeof diffView>[0],
  after: Parameters<typeof diffView>[0],
  labels: { before?: string; after?: string } = {},
): string {
  const [viewA, viewB] = hidePluginConfigValues(diffView(before), diffView(after));
  const a = toLines(viewA);
  const b = toLines(viewB);
  const ops = diffLines(a, b);
  if (!ops.some((op) => op.kind !== ' ')) return '';
  const header = [`--- ${labels.before ?? (before ? 'live' : '(does not exist)')}`, `+++ ${labels.after ?? (after ? 'new' : '(deleted)')}`];
  return [...header, ...hunks(ops, 3)].join('\n');
}

interface Op {
  kind: ' ' | '-' | '+';
  line: string;
}

/** Line diff: common prefix and suffix, then a longest common subsequence of the middle. */
export function diffLines(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const ops: Op[] = a.slice(0, start).map((line) => ({ kind: ' ', line }));
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const n = midA.length;
  const m = midB.length;
  if (n * m > 4_000_000) {
    // Too large to align cheaply: show it as replaced.
    ops.push(...midA.map((line) => ({ kind: '-' as const, line })), ...midB.map((line) => ({ kind: '+' as const, line })));
  } else {
    // lcs[i][j] = length of the LCS of midA[i..] and midB[j..]
    const lcs = new Uint32Array((n + 1) * (m + 1));
    const at = (i: number, j: number) => i * (m + 1) + j;
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[at(i, j)] = midA[i] === midB[j] ? lcs[at(i + 1, j + 1)] + 1 : Math.max(lcs[at(i + 1, j)], lcs[at(i, j + 1)]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        ops.push({ kind: ' ', line: midA[i] });
        i++;
        j++;
      } else if (j < m && (i === n || lcs[at(i, j + 1)] >= lcs[at(i + 1, j)])) {
        ops.push({ kind: '+', line: midB[j++] });
      } else {
        ops.push({ kind: '-', line: midA[i++] });
      }
    }
    // Show removals before additions within a changed block.
    for (let k = 0; k < ops.length; k++) {
      let e = k;
      while (e < ops.length && ops[e].kind !== ' ') e++;
      if (e > k + 1) {
        const block = ops.slice(k, e);
        ops.splice(k, e - k, ...block.filter((o) => o.kind === '-'), ...block.filter((o) => o.kind === '+'));
      }
      k = e;
    }
  }
  ops.push(...a.slice(endA).map((line) => ({ kind: ' ' as const, line })));
  return ops;
}

function hunks(ops: Op[], context: number): string[] {
  const out: string[] = [];
  const changed = ops.map((op) => op.kind !== ' ');
  let k = 0;
  while (k < ops.length) {
    if (!changed[k]) {
      k++;
      continue;
    }
    // A hunk: from `context` lines before the first change to `context` after
    // the last change that is within 2*context of the next.
    let end = k;
    for (;;) {
      while (end < ops.length && changed[end]) end++;
      let next = end;
      while (next < ops.length && !changed[next]) next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    const from = Math.max(0, k - context);
    const to = Math.min(ops.length, end + context);
    let oldLine = 1;
    let newLine = 1;
    for (let x = 0; x < from; x++) {
      if (ops[x].kind !== '+') oldLine++;
      if (ops[x].kind !== '-') newLine++;
    }
    const slice = ops.slice(from, to);
    const oldCount = slice.filter((o) => o.kind !== '+').length;
    const newCount = slice.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${oldCount ? oldLine : oldLine - 1},${oldCount} +${newCount ? newLine : newLine - 1},${newCount} @@`);
    out.push(...slice.map((o) => `${o.kind}${o.line}`));
    k = to;
  }
  return out;
}
