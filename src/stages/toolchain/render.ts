// The toolchain stage's outputs and summary section, from its record alone.
import { escapeHtml, sectionHtml } from '../../summary.js';
import type { StageView } from '../stage.js';
import type { SdkCheck } from '../../toolchain/compat.js';
import type { ToolchainResult } from '../../toolchain/index.js';
import type { ToolchainRecord } from './index.js';

const SOURCES: Record<ToolchainResult['source'], string> = {
  'tool-cache': 'the runner\'s tool cache',
  'actions-cache': 'the Actions cache',
  npm: 'a fresh install',
  'in-place': 'an install in the plugin directory',
  'plugin-node_modules': 'the plugin\'s own node_modules',
};

const sdkTable = (sdks: SdkCheck[]) => [['', 'SDK', 'version', 'compiler it needs'], ...sdks.map((s) => [s.ok ? '✅' : '❌', escapeHtml(s.sdk), escapeHtml(s.sdkVersion), escapeHtml(s.compiler)])];

export function renderToolchain(r: ToolchainRecord): StageView {
  if ('refused' in r) {
    return {
      outputs: [],
      summary: sectionHtml({
        title: 'Toolchain: refused',
        lines: [`Nothing was installed: the plugin's SDKs do not fit AssemblyScript ${escapeHtml(r.compilerVersion)}.`, ...r.error.problems.map(escapeHtml)],
        rows: r.sdks.length ? sdkTable(r.sdks) : undefined,
      }),
      error: r.error,
    };
  }
  return {
    outputs: [
      ['assemblyscript-version', r.assemblyscriptVersion],
      ['cache-hit', r.cacheHit],
    ],
    summary: sectionHtml({
      title: 'Toolchain',
      lines: [
        `AssemblyScript ${escapeHtml(r.assemblyscriptVersion)} from ${SOURCES[r.source]}${r.cacheHit ? ' (cache hit)' : ''}; ` +
          `dependencies as ${escapeHtml(r.lockfile)} locks them (${r.packageManager})`,
      ],
      rows: r.sdks.length ? sdkTable(r.sdks) : undefined,
    }),
  };
}
