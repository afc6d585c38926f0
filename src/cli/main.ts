/**
 * The `comms` command line. Each command parses its flags with yargs, runs a library use case,
 * and prints results (human or --json) on stdout and diagnostics on stderr. The exit code comes
 * from the typed error: 0 ok, 1 failure, 2 verification, 3 auth, 4 protocol/format/usage, 5 not found.
 */
import yargs, { type Argv } from 'yargs';
import { ExitCode, UsageError } from '../errors.ts';
import { createOutput, type Output } from './output.ts';
import { ackBuilder, runAck, type AckArgs } from './commands/ack.ts';
import { recvBuilder, runRecv, type RecvArgs } from './commands/recv.ts';
import { runSend, sendBuilder, type SendArgs } from './commands/send.ts';
import { keygenBuilder, runKeygen, type KeygenArgs } from './commands/keygen.ts';
import { replyBuilder, runReply, type ReplyArgs } from './commands/reply.ts';
import { discoverBuilder, runDiscover, runThread, threadBuilder, type DiscoverArgs, type ThreadArgs } from './commands/thread.ts';
import { runVerify, verifyBuilder, type VerifyCmdArgs } from './commands/verify.ts';
import { runServe, serveBuilder, type ServeArgs } from './commands/serve.ts';
import { runTrustAdd, runTrustList, runTrustRemove, trustBuilder, type TrustAddArgs, type TrustListArgs, type TrustRemoveArgs } from './commands/trust.ts';
import { copyBuilder, runCopy, type CopyArgs } from './commands/copy.ts';
import { inspectBuilder, runInspect, runTags, tagsBuilder, type InspectArgs, type TagsArgs } from './commands/inspect.ts';
import { VERSION } from '../index.ts';

type Runner<A> = (args: A, out: Output, signal: AbortSignal) => Promise<number>;

/**
 * yargs re-parses a positional as `--file -`, where a lone `-` reads as a flag, so `send -`
 * arrived as an empty file name. A bare `-` is swapped for this token (NUL never occurs in a real
 * argument) before parsing and swapped back by a middleware before any command sees it.
 */
const DASH = '\u0000-';

function protectDash(argv: string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => (a === '-' && (end === -1 || i < end) ? DASH : a));
}

function restoreDash(args: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(args)) {
    if (v === DASH) args[k] = '-';
    else if (Array.isArray(v)) args[k] = v.map((x) => (x === DASH ? '-' : x));
  }
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let exit: number = ExitCode.OK;
  const wants = { json: argv.includes('--json'), verbose: argv.includes('--verbose') || argv.includes('-v') };
  const run = <A extends { json: boolean; verbose: boolean }>(runner: Runner<A>) => async (args: A) => {
    const out = createOutput({ json: args.json, verbose: args.verbose });
    try {
      exit = await runner(args, out, controller.signal);
    } catch (err) {
      exit = out.error(err);
    }
  };
  try {
    const cli = yargs(protectDash(argv))
      .scriptName('comms')
      .middleware(restoreDash)
      .usage('comms <command> [options]\n\nCarry messages and files through OCI registries (or an oci:<folder> mailbox).')
      .command('send [file]', 'Send a file, stdin (-) or a text (--message) to a recipient', (y: Argv) => sendBuilder(y), run<SendArgs>(runSend) as never)
      .command('recv', 'Receive your messages into a folder, verifying each before writing it', (y: Argv) => recvBuilder(y), run<RecvArgs>(runRecv) as never)
      .command('ack', 'Push a receipt (accepted or rejected) for a message', (y: Argv) => ackBuilder(y), run<AckArgs>(runAck) as never)
      .command('verify', 'Verify the signature of a message (or any signed artifact) against a trust policy', (y: Argv) => verifyBuilder(y), run<VerifyCmdArgs>(runVerify) as never)
      .command('reply [file]', 'Answer a message: a message whose subject is the one you answer', (y: Argv) => replyBuilder(y), run<ReplyArgs>(runReply) as never)
      .command('thread <digest>', 'Show a message with its replies, receipts and signatures as a tree', (y: Argv) => threadBuilder(y), run<ThreadArgs>(runThread) as never)
      .command('discover <digest>', 'List the raw referrers of a manifest (like oras discover)', (y: Argv) => discoverBuilder(y), run<DiscoverArgs>(runDiscover) as never)
      .command('trust', 'Bind identities to signers in the trust file: add, list, remove', (y: Argv) =>
        trustBuilder(y, { add: run<TrustAddArgs>(runTrustAdd), list: run<TrustListArgs>(runTrustList), remove: run<TrustRemoveArgs>(runTrustRemove) }))
      .command('copy <src> <dst>', 'Copy a message (with its bundle and receipts) or a whole mailbox, digests preserved', (y: Argv) => copyBuilder(y), run<CopyArgs>(runCopy) as never)
      .command('inspect <ref>', 'Show a manifest as served: digest, summary, or the exact bytes (--raw)', (y: Argv) => inspectBuilder(y), run<InspectArgs>(runInspect) as never)
      .command('tags', 'List a repository\'s tags, page by page', (y: Argv) => tagsBuilder(y), run<TagsArgs>(runTags) as never)
      .command('keygen', 'Make an ECDSA P-256 signing key pair', (y: Argv) => keygenBuilder(y), run<KeygenArgs>(runKeygen) as never)
      .command('serve', 'Run a local OCI registry (Distribution v1.1 with the Referrers API) over a folder', (y: Argv) => serveBuilder(y), run<ServeArgs>(runServe) as never)
      .demandCommand(1, 'name a command (comms --help lists them all)')
      .strict()
      .recommendCommands()
      .version(VERSION)
      .help()
      .alias('h', 'help')
      .wrap(Math.min(110, process.stdout.columns || 100))
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new UsageError(msg);
      });
    await cli.parseAsync();
  } catch (err) {
    exit = createOutput(wants).error(err instanceof Error && !(err instanceof UsageError) && (err as { name?: string }).name === 'YError' ? new UsageError(err.message) : err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exit;
}
