// The build stage's outputs and summary section, from its record alone: the
// module built, or the compiler's diagnostics as a table.
import * as path from 'node:path';
import { countDiagnostics, formatDiagnostic } from '../../build/diagnostics.js';
import { escapeHtml, sectionHtml } from '../../summary.js';
import type { RenderContext, StageView } from '../stage.js';
import type { BuildStageRecord } from './index.js';

/** Diagnostics shown in the failure table; the compiler output in the details has them all. */
const SHOWN_DIAGNOSTICS = 50;

export function renderBuild(record: BuildStageRecord, where: RenderContext): StageView {
  if (!record.ok) return { outputs: [], summary: renderFailure(record, where), error: record.error };
  const r = record.build;
  return {
    outputs: [
      ['wasm-path', r.wasmPath],
      ['wasm-sha256', r.sha256],
      ['wasm-size', r.size],
    ],
    summary: sectionHtml({
      title: 'Build',
      lines: [
        `AssemblyScript ${escapeHtml(r.compilerVersion)}: <code>${escapeHtml(r.command)}</code>, output from ${escapeHtml(r.outputFrom)}` +
          (r.diagnostics.length ? `; compiler: ${countDiagnostics(r.diagnostics)}` : ''),
      ],
      rows: [
        ['plugin.wasm', 'size', 'sha256', 'ABI', 'root id'],
        [escapeHtml(path.relative(where.cwd, r.wasmPath)), `${r.size} bytes`, `<code>${r.sha256}</code>`, r.module.abi, escapeHtml(r.rootId)],
      ],
      details: [
        ...(r.diagnostics.length ? [{ label: `Compiler diagnostics (${countDiagnostics(r.diagnostics)})`, text: r.diagnostics.map((d) => formatDiagnostic(d)).join('\n') }] : []),
        { label: 'Exports and imports', text: `exports: ${r.module.exports.join(', ')}\nimports: ${r.module.imports.join(', ')}` },
      ],
    }),
  };
}

function renderFailure(record: Extract<BuildStageRecord, { ok: false }>, where: RenderContext): string {
  const err = record.error;
  const rel = path.relative(where.cwd, record.pluginDir);
  const shown = err.diagnostics.slice(0, SHOWN_DIAGNOSTICS);
  return sectionHtml({
    title: `Build failed: ${countDiagnostics(err.diagnostics)}`,
    lines: [escapeHtml(err.message)],
    rows: shown.length
      ? [
          ['', 'where', 'code', 'message'],
          ...shown.map((d) => [
            d.level === 'error' ? '❌' : '⚠️',
            escapeHtml(d.file ? `${d.file.startsWith('~lib/') ? d.file : path.join(rel, d.file)}:${d.line}:${d.column}` : ''),
            escapeHtml(d.code),
            escapeHtml(d.message),
          ]),
        ]
      : undefined,
    details: err.details ? [{ label: 'Compiler output', text: err.details }] : [],
  });
}
