// Signing in the push stage: the key of `sign: true`, read before anything
// is pushed, and the signature written once the image is there.
import { UserError } from '../../errors.js';
import type { Inputs } from '../../inputs.js';
import { KeyError, KeylessSigner, openRepository, parsePrivateKey, signImage, type SignRecord, type SigningKey } from '../../sign/index.js';
import { registryLogin } from '../stage.js';

/**
 * What the stage signs with: the key of `sign: true`, decrypted in memory, or
 * the keyless signer of `sign: keyless` (which fails here, before anything is
 * pushed, when the job cannot get an OIDC token); undefined when it does not sign.
 */
export async function signingKey(inputs: Inputs): Promise<SigningKey | undefined> {
  if (inputs.sign === 'none') return undefined;
  if (!inputs.image) throw new UserError('input `sign` needs `image`: only an image pushed to a registry can be signed, not an OCI layout');
  if (inputs.sign === 'keyless') return new KeylessSigner();
  try {
    return await parsePrivateKey(inputs.signKey!, inputs.signKeyPassword);
  } catch (err) {
    if (err instanceof KeyError) throw new UserError(`input \`sign-key\`: ${err.message}`);
    throw err;
  }
}

export async function signPushed(inputs: Inputs, digest: string, key: SigningKey, log: (line: string) => void): Promise<SignRecord> {
  const client = await openRepository({ ...registryLogin(inputs, inputs.image!.registry), registry: inputs.image!.registry, repository: inputs.image!.repository });
  try {
    return await signImage({ client, digest, key, log });
  } finally {
    client.close();
  }
}
