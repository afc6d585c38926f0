/**
 * `comms trust add|list|remove`: edit and show the trust file (which signer speaks for which
 * identity). The file is --trust, else COMMS_TRUST, else ~/.config/comms/trust.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv } from 'yargs';
import { NotFoundError, UsageError } from '../../errors.ts';
import { keyIdOf } from '../../trust/key-id.ts';
import { appendTrustLine, readTrustText, removeTrustIdentity, writeTrustText } from '../../trust/trust-edit.ts';
import {
  defaultTrustFilePath,
  formatTrustLine,
  isIdentityName,
  loadKey,
  parseTrustFile,
  publicKeyOf,
  type TrustEntry,
  type TrustFile,
} from '../../trust/trust-file.ts';
import type { Output } from '../output.ts';

interface TrustCommonArgs {
  json: boolean;
  verbose: boolean;
  trust?: string;
}

export interface TrustAddArgs extends TrustCommonArgs {
  identity: string;
  signer?: string;
  keyless: boolean;
  issuer?: string;
  'certificate-identity'?: string;
  'certificate-identity-regexp'?: string;
}

export interface TrustRemoveArgs extends TrustCommonArgs {
  identity: string;
  'key-id'?: string;
}

export type TrustListArgs = TrustCommonArgs;

function withTrustCommon<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON' })
    .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'Print diagnostics on stderr' })
    .option('trust', { type: 'string', describe: 'The trust file (default: COMMS_TRUST, else ~/.config/comms/trust)' });
}

export function trustBuilder(
  y: Argv,
  commands: { add: (a: TrustAddArgs) => Promise<void>; list: (a: TrustListArgs) => Promise<void>; remove: (a: TrustRemoveArgs) => Promise<void> },
) {
  return y
    .command(
      'add <identity> [signer]',
      'Bind an identity to a public key file (or an age recipient), or with --keyless to a certificate identity',
      (c: Argv) =>
        withTrustCommon(c)
          .positional('identity', { type: 'string', demandOption: true, describe: 'The identity (what dockercomms.sender says: alice@example.com, ci, …)' })
          .positional('signer', { type: 'string', describe: 'A PEM public key file (e.g. alice.pub from comms keygen), or an age1… recipient' })
          .option('keyless', { type: 'boolean', default: false, describe: 'Bind a keyless (Sigstore) certificate identity instead of a key' })
          .option('issuer', { type: 'string', describe: 'With --keyless: the OIDC issuer that vouches for the identity' })
          .option('certificate-identity', { type: 'string', describe: 'With --keyless: the exact certificate identity (email or URI)' })
          .option('certificate-identity-regexp', { type: 'string', describe: 'With --keyless: a regular expression the certificate identity must match' })
          .example('$0 trust add alice@example.com ./alice.pub', "trust alice's key to speak for alice@example.com")
          .example(
            '$0 trust add ci --keyless --issuer https://token.actions.githubusercontent.com --certificate-identity-regexp "^https://github.com/acme/"',
            'trust acme\'s GitHub workflows as "ci"',
          ),
      commands.add as never,
    )
    .command('list', 'Show the bindings of the trust file', (c: Argv) => withTrustCommon(c), commands.list as never)
    .command(
      'remove <identity>',
      "Remove an identity's bindings (all of them, or the one of --key-id)",
      (c: Argv) =>
        withTrustCommon(c)
          .positional('identity', { type: 'string', demandOption: true, describe: 'The identity to remove' })
          .option('key-id', { type: 'string', describe: 'Only the binding to the key with this id' }),
      commands.remove as never,
    )
    .demandCommand(1, 'name a trust command: add, list or remove');
}

function trustPath(args: TrustCommonArgs, env: NodeJS.ProcessEnv = process.env): string {
  return args.trust ?? (env['COMMS_TRUST'] || defaultTrustFilePath(env));
}

/** Parses the file's text and loads its keys (a line whose key is gone is reported, not fatal, for list/remove). */
async function readTrust(file: string): Promise<{ text: string; trust: TrustFile; problems: string[] }> {
  const text = await readTrustText(file);
  const trust = parseTrustFile(text, file);
  const problems: string[] = [];
  for (const e of trust.entries) {
    if (e.kind !== 'key') continue;
    try {
      await loadKey(e, `${file}:${e.line}`);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { text, trust, problems };
}

export async function runTrustAdd(args: TrustAddArgs, out: Output): Promise<number> {
  if (!isIdentityName(args.identity)) throw new UsageError(`${JSON.stringify(args.identity)} cannot be named in a trust file: no spaces, quotes, # or commas`);
  const file = trustPath(args);
  const { text, trust } = await readTrust(file);
  let line: string;
  let same: (e: TrustEntry) => boolean;
  let what: string;
  if (args.keyless) {
    if (args.signer !== undefined)
      throw new UsageError('--keyless binds a certificate identity: give --certificate-identity or --certificate-identity-regexp, not a key file');
    if (args.issuer === undefined) throw new UsageError('--keyless needs --issuer (the OIDC issuer that vouches for the identity)');
    const exact = args['certificate-identity'];
    const regexp = args['certificate-identity-regexp'];
    if ((exact === undefined) === (regexp === undefined))
      throw new UsageError('--keyless needs exactly one of --certificate-identity or --certificate-identity-regexp');
    line = formatTrustLine({
      kind: 'keyless',
      identities: [args.identity],
      issuer: args.issuer,
      ...(exact !== undefined ? { certificateIdentity: exact } : { certificateIdentityRegexp: regexp! }),
    });
    same = (e) => e.kind === 'keyless' && e.issuer === args.issuer && e.certificateIdentity === exact && e.certificateIdentityRegexp === regexp;
    what = `keyless ${exact ?? `~ ${regexp}`} (issuer ${args.issuer})`;
  } else if (args.signer === undefined) {
    throw new UsageError(
      'name what speaks for the identity: a public key file, an age1… recipient, or --keyless with --issuer and --certificate-identity[-regexp]',
    );
  } else if (args.signer.startsWith('age1')) {
    line = formatTrustLine({ kind: 'age', identities: [args.identity], recipient: args.signer });
    same = (e) => e.kind === 'age' && e.recipient === args.signer;
    what = `age recipient ${args.signer}`;
  } else {
    const pem = await readFile(args.signer, 'utf8').catch((cause: unknown) => {
      throw new UsageError(`cannot read ${args.signer} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause });
    });
    const keyId = keyIdOf(publicKeyOf(pem, args.signer));
    // Written relative to the trust file's folder, as the file's own lines are read.
    const relative = path.relative(path.dirname(path.resolve(file)), path.resolve(args.signer));
    line = formatTrustLine({ kind: 'key', identities: [args.identity], keyPath: relative });
    same = (e) => e.kind === 'key' && e.keyId === keyId;
    what = `key ${keyId}`;
  }
  const existing = trust.entries.find((e) => e.identities.includes(args.identity) && same(e));
  if (existing !== undefined) {
    out.result({ file, identity: args.identity, added: false, line: existing.line }, `${args.identity} is already bound to ${what} (${file}:${existing.line})`);
    return 0;
  }
  const next = appendTrustLine(text, line);
  await writeTrustText(file, next);
  out.result({ file, identity: args.identity, added: true, line: next.split('\n').length - 1 }, `bound ${args.identity} to ${what} in ${file}`);
  return 0;
}

export async function runTrustList(args: TrustListArgs, out: Output): Promise<number> {
  const file = trustPath(args);
  const { trust, problems } = await readTrust(file);
  for (const p of problems) out.note(p);
  const rows = trust.entries.map(describeEntry);
  if (out.json) {
    out.result({ file, entries: rows }, '');
  } else {
    const lines = rows.map((r) => `${r.identities.join(',')}  ${r.summary}`);
    out.result({}, rows.length === 0 ? `no bindings in ${file}` : `${file}\n${lines.join('\n')}`);
  }
  return 0;
}

export async function runTrustRemove(args: TrustRemoveArgs, out: Output): Promise<number> {
  const file = trustPath(args);
  const { text, trust } = await readTrust(file);
  const keyId = args['key-id']?.toLowerCase().replace(/^sha256:/, '');
  const { text: next, removed } = removeTrustIdentity(text, trust, args.identity, (e) => keyId === undefined || (e.kind === 'key' && e.keyId === keyId));
  if (removed.length === 0) {
    throw new NotFoundError(`${file} binds ${JSON.stringify(args.identity)} to nothing${keyId !== undefined ? ` with key id ${keyId}` : ''}`, {
      code: 'TRUST_BINDING_NOT_FOUND',
    });
  }
  await writeTrustText(file, next);
  out.result({ file, identity: args.identity, removed: removed.map(describeEntry) }, `removed ${removed.length} binding(s) of ${args.identity} from ${file}`);
  return 0;
}

function describeEntry(e: TrustEntry): {
  line: number;
  identities: string[];
  kind: TrustEntry['kind'];
  summary: string;
  keyId?: string;
  keyPath?: string;
  issuer?: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  recipient?: string;
} {
  const base = { line: e.line, identities: e.identities, kind: e.kind };
  if (e.kind === 'key')
    return { ...base, keyPath: e.keyPath, ...(e.keyId ? { keyId: e.keyId } : {}), summary: `key ${e.keyId ?? '(unreadable)'} (${e.keyPath})` };
  if (e.kind === 'age') return { ...base, recipient: e.recipient, summary: `age ${e.recipient}` };
  return {
    ...base,
    issuer: e.issuer,
    ...(e.certificateIdentity !== undefined ? { certificateIdentity: e.certificateIdentity } : {}),
    ...(e.certificateIdentityRegexp !== undefined ? { certificateIdentityRegexp: e.certificateIdentityRegexp } : {}),
    summary: `keyless ${e.certificateIdentity ?? `~ ${e.certificateIdentityRegexp}`} (issuer ${e.issuer})`,
  };
}
