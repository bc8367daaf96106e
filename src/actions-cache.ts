// The Actions cache (@actions/cache), for what the stages keep in the tool
// cache: the toolchain install, Envoy, and the compiled-module store. On
// GitHub's hosted runners the tool cache starts empty in every job; the
// Actions cache carries those folders from one job to the next.
//
// The client is a large part of the bundle, so it is loaded only when a
// stage has missed in the tool cache and the runner offers the service
// (ACTIONS_CACHE_URL for the v1 service, ACTIONS_RESULTS_URL for v2). A
// folder is saved and restored at the same absolute path: the service keys
// an entry by its paths as well as its key. Nothing here fails a stage: a
// restore that fails is a miss, a save that fails is a warning. What is
// restored is only a candidate; each caller checks it before using it.
import { log } from './log.js';
import { messageOf } from './errors.js';

export interface ActionsCache {
  /** Restores `paths` from the first entry that `key` (or a restore key) matches, by prefix; the key it matched, or undefined. */
  restore(paths: string[], key: string, restoreKeys?: string[]): Promise<string | undefined>;
  /** Saves `paths` under `key`. A failed save is logged (by the client, or here) and never thrown. */
  save(paths: string[], key: string): Promise<void>;
}

/** Whether the runner says it has a cache service (without loading the client). */
function serviceAnnounced(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_CACHE_URL || env.ACTIONS_RESULTS_URL);
}

/** A key as the service accepts it: at most 512 characters, no commas. */
export function cacheKey(...parts: string[]): string {
  const key = parts.join('-').replace(/,/g, '_');
  if (key.length > 512) throw new Error(`Actions cache key longer than 512 characters: ${key.slice(0, 80)}…`);
  return key;
}

/**
 * The Actions cache, or undefined when this run has none (not in a
 * workflow, no service, or no tool cache directory to restore into).
 * `what` names the folder in the log lines ("the toolchain", "Envoy 1.40.0").
 */
export async function openActionsCache(what: string, env: NodeJS.ProcessEnv = process.env): Promise<ActionsCache | undefined> {
  if (!env.RUNNER_TOOL_CACHE || !serviceAnnounced(env)) return undefined;
  let cache: typeof import('@actions/cache');
  try {
    cache = await import('@actions/cache');
  } catch (err) {
    log.warning(`could not load the Actions cache client: ${messageOf(err)}`);
    return undefined;
  }
  if (!cache.isFeatureAvailable()) return undefined;
  return {
    async restore(paths, key, restoreKeys) {
      try {
        const hit = await cache.restoreCache(paths, key, restoreKeys);
        if (hit) log.info(`restored ${what} from the Actions cache (key ${hit})`);
        return hit;
      } catch (err) {
        log.warning(`could not restore ${what} from the Actions cache: ${messageOf(err)}`);
        return undefined;
      }
    },
    async save(paths, key) {
      // The client reports a failed upload itself ("Failed to save: …") and
      // returns as if it had saved, so this line says what was attempted.
      log.info(`saving ${what} to the Actions cache (key ${key})`);
      try {
        await cache.saveCache(paths, key);
      } catch (err) {
        log.warning(`could not save ${what} to the Actions cache: ${messageOf(err)}`);
      }
    },
  };
}
