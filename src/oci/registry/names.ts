// Registry addresses and repository names: parsed and checked before any
// request is made, with messages that say what a valid one looks like.
import { isIP } from 'node:net';
import { UserError } from '../../errors.js';

/** True for 127.0.0.0/8, ::1 and localhost (with or without a port). */
export function isLoopbackHost(host: string): boolean {
  const hostname = splitHostPort(host).hostname.toLowerCase();
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (isIP(hostname) === 4) return hostname.startsWith('127.');
  if (isIP(hostname) === 6) return hostname === '::1' || hostname === '0:0:0:0:0:0:0:1';
  return false;
}

/** Splits "host:port", "[v6]:port", "host" into parts. */
function splitHostPort(host: string): { hostname: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) return { hostname: v6[1], port: v6[2] ? Number(v6[2]) : undefined };
  const m = /^([^:/]+)(?::(\d+))?$/.exec(host);
  if (m) return { hostname: m[1], port: m[2] ? Number(m[2]) : undefined };
  return { hostname: host };
}

export interface RegistryAddress {
  /** As the user wrote it, without a scheme: "host[:port]". Used in refs. */
  host: string;
  /** Where the API lives (differs only for Docker Hub). */
  apiHost: string;
  /** Forced by an explicit "http://" or "https://" prefix. */
  scheme?: 'http' | 'https';
}

/** Parses a registry option: "host[:port]", optionally with a scheme. */
export function parseRegistry(registry: string): RegistryAddress {
  let text = registry.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\//i.exec(text);
  if (m) {
    scheme = m[1].toLowerCase() as 'http' | 'https';
    text = text.slice(m[0].length);
  }
  text = text.replace(/\/+$/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(text)) {
    throw new UserError(`the registry "${registry}" is not a host name with an optional port (e.g. ghcr.io or registry.example.com:5000)`);
  }
  const port = /:(\d+)$/.exec(text)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw new UserError(`the registry "${registry}" names port ${port}, which is not a port number (1 to 65535)`);
  }
  const lower = text.toLowerCase();
  const apiHost = lower === 'docker.io' || lower === 'index.docker.io' ? 'registry-1.docker.io' : text;
  return { host: text, apiHost, scheme };
}

export function isDockerHub(host: string): boolean {
  return ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host.toLowerCase());
}

const REPO_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPO_RE = new RegExp(`^${REPO_COMPONENT}(?:/${REPO_COMPONENT})*$`);

export function validateRepository(repository: string): void {
  if (!REPO_RE.test(repository) || repository.length > 255) {
    throw new UserError(
      `the repository "${repository}" is not a valid image repository name: use lower-case letters, digits and . _ - separated by /, e.g. my-team/header-plugin`,
    );
  }
}

/** The registry's error text, cut short: `errors[].code: message` when it is the standard JSON. */
export function registryErrorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  if (!text) return '';
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => [e.code, e.message].filter(Boolean).join(': ') + (e.detail !== undefined ? ` (${JSON.stringify(e.detail).slice(0, 300)})` : ''))
        .join('; ')
        .slice(0, 2000);
    }
  } catch {
    // not JSON
  }
  return text.slice(0, 2000);
}
