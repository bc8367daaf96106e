// One repository of one registry, ready to use: credentials resolved (inputs,
// then the Docker config and its helpers) and the registry reached once, so a
// bad address, TLS or login fails here with its explanation.
import { resolveCredentials } from './auth.js';
import { RegistryClient } from './client.js';
import type { RegistryClientOptions } from './connection.js';

export interface RepositoryOptions extends Omit<RegistryClientOptions, 'credentials'> {
  username?: string;
  password?: string;
  dockerConfigPath?: string;
}

/** A registry client for one repository, credentials resolved and the registry pinged. Close it when done. */
export async function openRepository(options: RepositoryOptions): Promise<RegistryClient> {
  const { username, password, dockerConfigPath, ...client } = options;
  const credentials = await resolveCredentials({ registry: options.registry, username, password, dockerConfigPath });
  const c = new RegistryClient({ ...client, credentials });
  try {
    await c.ping();
  } catch (err) {
    c.close();
    throw err;
  }
  return c;
}
