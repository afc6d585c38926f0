import type { Argv } from 'yargs';
import { unlink } from 'node:fs/promises';
import { generateAgeIdentityFile, generateKeyPair } from '../../trust/keygen.ts';
import type { Output } from '../output.ts';

export interface KeygenArgs {
  json: boolean;
  verbose: boolean;
  out: string;
  age: boolean;
}

export function keygenBuilder(y: Argv) {
  // No registry is involved: only the output options apply.
  return y
    .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object' })
    .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'Print diagnostics on stderr' })
    .option('quiet', { type: 'boolean', default: false, alias: 'q', describe: 'Print no notes on stderr' })
    .option('out', {
      type: 'string',
      default: 'comms',
      describe: 'Write <out>.key (private, mode 0600) and <out>.pub; passphrase from COMMS_KEY_PASSPHRASE when set. Never overwrites.',
    })
    .option('age', {
      type: 'boolean',
      default: false,
      describe: 'Also write an age identity <out>.age-key (mode 0600, age-keygen format) for encrypted messages; prints its recipient (age1…)',
    });
}

export async function runKeygen(args: KeygenArgs, out: Output): Promise<number> {
  const privateKeyPath = `${args.out}.key`;
  const publicKeyPath = `${args.out}.pub`;
  const agePath = `${args.out}.age-key`;
  const passphrase = process.env['COMMS_KEY_PASSPHRASE'];
  // The age identity first: if the key pair is then refused, it is removed, so nothing is left half made.
  const age = args.age ? await generateAgeIdentityFile(agePath) : undefined;
  let keyId: string;
  try {
    ({ keyId } = await generateKeyPair({ privateKeyPath, publicKeyPath, ...(passphrase ? { passphrase } : {}) }));
  } catch (err) {
    if (age !== undefined) await unlink(agePath).catch(() => {});
    throw err;
  }
  const json: Record<string, unknown> = { privateKey: privateKeyPath, publicKey: publicKeyPath, keyId, encrypted: Boolean(passphrase) };
  if (age !== undefined) Object.assign(json, { ageIdentity: agePath, ageRecipient: age.recipient });
  out.result(
    json,
    `wrote ${privateKeyPath} (private, 0600${passphrase ? ', encrypted' : ''}) and ${publicKeyPath}; key id ${keyId}` +
      (age !== undefined ? `\nwrote ${agePath} (age identity, 0600); others encrypt to you with --encrypt-to ${age.recipient}` : ''),
  );
  return 0;
}
