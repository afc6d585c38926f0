import type { Argv } from 'yargs';
import { generateKeyPair } from '../../trust/keygen.ts';

import type { Output } from '../output.ts';

export interface KeygenArgs {
  json: boolean;
  verbose: boolean;
  out: string;
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
  });
}

export async function runKeygen(args: KeygenArgs, out: Output): Promise<number> {
  const privateKeyPath = `${args.out}.key`;
  const publicKeyPath = `${args.out}.pub`;
  const passphrase = process.env['COMMS_KEY_PASSPHRASE'];
  const { keyId } = await generateKeyPair({ privateKeyPath, publicKeyPath, ...(passphrase ? { passphrase } : {}) });
  out.result(
    { privateKey: privateKeyPath, publicKey: publicKeyPath, keyId, encrypted: Boolean(passphrase) },
    `wrote ${privateKeyPath} (private, 0600${passphrase ? ', encrypted' : ''}) and ${publicKeyPath}; key id ${keyId}`,
  );
  return 0;
}
