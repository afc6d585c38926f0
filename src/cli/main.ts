/**
 * The `comms` command line. Each command parses its flags with yargs, runs a library use case,
 * and prints results (human or --json) on stdout and diagnostics on stderr. The exit code comes
 * from the typed error: 0 ok, 1 failure, 2 verification, 3 auth, 4 protocol/format/usage, 5 not found;
 * 130 when Ctrl-C (SIGINT) cut work short, 141 when stdout was closed by its reader (as for a process ended by SIGPIPE).
 *
 * Start-up stays close to Node's own: `--version` loads nothing but this file, yargs is loaded
 * only to parse, and a command's module only when that command is named. Within a command, the
 * heavy parts load only on the path that uses them: Sigstore's signing code when a run signs (the
 * keyless machinery, Fulcio, Rekor and TUF, only when it signs keylessly), the verifier when it
 * verifies, age when it encrypts or decrypts, the registry client (undici) when a mailbox is remote.
 */
import type { Argv } from 'yargs';
import { UsageError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { createOutput, type Output } from './output.ts';
import { closest, unknownOptions } from './unknown-options.ts';
import { skipHelpCache } from './yargs-help-cache.ts';

type Runner<A> = (args: A, out: Output, signal: AbortSignal) => Promise<number>;

/** Wraps a runner into a yargs handler: output, typed errors to exit codes, the shared AbortSignal. */
// biome-ignore lint/suspicious/noExplicitAny: each command's runner takes its own argument type; yargs hands them over untyped
type Wrap = (runner: Runner<any>) => (args: any) => Promise<void>;

interface LoadedCommand {
  /** Adds the command's options; a command with subcommands registers them with `wrap`ped runners. */
  // biome-ignore lint/suspicious/noExplicitAny: each command's runner takes its own argument type; yargs hands them over untyped
  builder: (y: Argv, wrap: Wrap) => Argv<any>;
  /** The runner of a command without subcommands. */
  // biome-ignore lint/suspicious/noExplicitAny: each command's runner takes its own argument type; yargs hands them over untyped
  run?: Runner<any>;
}

interface CommandSpec {
  /** yargs command string: the name first, then positionals. */
  command: string;
  describe: string;
  load: () => Promise<LoadedCommand>;
}

export const EXIT_INTERRUPTED = 130;
export const EXIT_STDOUT_CLOSED = 141;

/** Every command, with the module that implements it; imported only when its name is on the command line. */
const COMMANDS: CommandSpec[] = [
  {
    command: 'send [file]',
    describe: 'Send a file, stdin (-) or a text (--message) to a recipient',
    load: async () => {
      const m = await import('./commands/send.ts');
      return { builder: m.sendBuilder, run: m.runSend };
    },
  },
  {
    command: 'recv',
    describe: 'Receive your messages into a folder, verifying each before writing it',
    load: async () => {
      const m = await import('./commands/recv.ts');
      return { builder: m.recvBuilder, run: m.runRecv };
    },
  },
  {
    command: 'ls',
    describe: 'List your messages without downloading them: sender, size, name, verified, read, expired',
    load: async () => {
      const m = await import('./commands/ls.ts');
      return { builder: m.lsBuilder, run: m.runLs };
    },
  },
  {
    command: 'rm <digest..>',
    describe: 'Delete messages with their receipts and signature bundles',
    load: async () => {
      const m = await import('./commands/rm.ts');
      return { builder: m.rmBuilder, run: m.runRm };
    },
  },
  {
    command: 'gc',
    describe: 'Delete expired messages with their receipts and signature bundles (--dry-run: only show them)',
    load: async () => {
      const m = await import('./commands/rm.ts');
      return { builder: m.gcBuilder, run: m.runGc };
    },
  },
  {
    command: 'ack',
    describe: 'Push a receipt (accepted or rejected) for a message',
    load: async () => {
      const m = await import('./commands/ack.ts');
      return { builder: m.ackBuilder, run: m.runAck };
    },
  },
  {
    command: 'verify',
    describe: 'Verify the signature of a message (or any signed artifact) against a trust policy',
    load: async () => {
      const m = await import('./commands/verify.ts');
      return { builder: m.verifyBuilder, run: m.runVerify };
    },
  },
  {
    command: 'reply [file]',
    describe: 'Answer a message: a message whose subject is the one you answer',
    load: async () => {
      const m = await import('./commands/reply.ts');
      return { builder: m.replyBuilder, run: m.runReply };
    },
  },
  {
    command: 'thread <digest>',
    describe: 'Show a message with its replies, receipts and signatures as a tree',
    load: async () => {
      const m = await import('./commands/thread.ts');
      return { builder: m.threadBuilder, run: m.runThread };
    },
  },
  {
    command: 'discover <digest>',
    describe: 'List the raw referrers of a manifest (like oras discover)',
    load: async () => {
      const m = await import('./commands/thread.ts');
      return { builder: m.discoverBuilder, run: m.runDiscover };
    },
  },
  {
    command: 'trust',
    describe: 'Bind identities to signers in the trust file: add, list, remove',
    load: async () => {
      const m = await import('./commands/trust.ts');
      return { builder: (y, wrap) => m.trustBuilder(y, { add: wrap(m.runTrustAdd), list: wrap(m.runTrustList), remove: wrap(m.runTrustRemove) }) };
    },
  },
  {
    command: 'copy <src> <dst>',
    describe: 'Copy a message (with its bundle and receipts) or a whole mailbox, digests preserved',
    load: async () => {
      const m = await import('./commands/copy.ts');
      return { builder: m.copyBuilder, run: m.runCopy };
    },
  },
  {
    command: 'inspect <ref>',
    describe: 'Show a manifest as served: digest, summary, or the exact bytes (--raw)',
    load: async () => {
      const m = await import('./commands/inspect.ts');
      return { builder: m.inspectBuilder, run: m.runInspect };
    },
  },
  {
    command: 'tags',
    describe: "List a repository's tags, page by page",
    load: async () => {
      const m = await import('./commands/inspect.ts');
      return { builder: m.tagsBuilder, run: m.runTags };
    },
  },
  {
    command: 'keygen',
    describe: 'Make an ECDSA P-256 signing key pair',
    load: async () => {
      const m = await import('./commands/keygen.ts');
      return { builder: m.keygenBuilder, run: m.runKeygen };
    },
  },
  {
    command: 'serve',
    describe: 'Run a local OCI registry (Distribution v1.1 with the Referrers API) over a folder',
    load: async () => {
      const m = await import('./commands/serve.ts');
      return { builder: m.serveBuilder, run: m.runServe };
    },
  },
  {
    command: 'login <registry>',
    describe: "Store registry credentials in docker's config.json (or its credential helper)",
    load: async () => {
      const m = await import('./commands/login.ts');
      return { builder: m.loginBuilder, run: m.runLogin };
    },
  },
  {
    command: 'logout <registry>',
    describe: "Remove a registry's credentials from docker's config.json (and its credential helper)",
    load: async () => {
      const m = await import('./commands/login.ts');
      return { builder: m.logoutBuilder, run: m.runLogout };
    },
  },
  {
    command: 'mcp',
    describe: 'Serve the mailbox to an AI agent: a Model Context Protocol server over stdio',
    load: async () => {
      const m = await import('./commands/mcp.ts');
      return { builder: m.mcpBuilder, run: m.runMcp };
    },
  },
  {
    command: 'completion [shell]',
    describe: 'Print a bash or zsh completion script (source it from ~/.bashrc or ~/.zshrc)',
    load: async () => {
      const m = await import('./commands/completion.ts');
      return { builder: m.completionBuilder, run: m.runCompletion };
    },
  },
];

const commandName = (spec: CommandSpec): string => spec.command.split(' ')[0]!;

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
  // The one answer that needs no parser: keeps `comms --version` as fast as Node starts.
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const controller = new AbortController();
  let interrupted = false;
  let stdoutClosed = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT') interrupted = true;
    controller.abort(new Error(signal === 'SIGINT' ? 'interrupted' : 'terminated'));
  };
  // A reader that goes away (`comms … --json | head -1`) ends the work quietly, as SIGPIPE would.
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
      stdoutClosed = true;
      process.exitCode = EXIT_STDOUT_CLOSED;
      controller.abort(new Error('stdout closed'));
      return;
    }
    throw err;
  };
  process.stdout.on('error', onStdoutError);
  process.stderr.on('error', () => {});
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const wants = {
    json: argv.includes('--json'),
    verbose: argv.includes('--verbose') || argv.includes('-v'),
    quiet: argv.includes('--quiet') || argv.includes('-q'),
  };
  let exit = 0;
  let reportInterrupt = false;
  // A command whose normal end is Ctrl-C (serve, recv --watch) returns and keeps its exit code;
  // work that Ctrl-C cut short (it rejects once aborted) exits 130.
  // biome-ignore lint/suspicious/noExplicitAny: each command's runner takes its own argument type; yargs hands them over untyped
  const run = (runner: Runner<any>) => async (args: { json: boolean; verbose: boolean; quiet?: boolean }) => {
    const out = createOutput({ json: args.json, verbose: args.verbose, quiet: args.quiet === true });
    try {
      exit = await runner(args, out, controller.signal);
    } catch (err) {
      if (stdoutClosed) return;
      if (interrupted) {
        exit = EXIT_INTERRUPTED;
        reportInterrupt = true;
        return;
      }
      exit = out.error(err);
    }
  };
  try {
    // Only the named commands' modules are loaded; the others are listed by name and description.
    const named = new Set(argv.filter((a) => !a.startsWith('-')));
    const loaded = new Map<string, LoadedCommand>();
    await Promise.all(COMMANDS.filter((c) => named.has(commandName(c))).map(async (c) => loaded.set(commandName(c), await c.load())));
    const yargs = await (await import('./yargs-loader.ts')).loadYargs();
    // The yargs instance of the command being parsed: what the unknown-option check compares against.
    let current: Argv | undefined;
    let cli = yargs(protectDash(argv))
      .scriptName('comms')
      .middleware(restoreDash)
      .usage('comms <command> [options]\n\nCarry messages and files through OCI registries (or an oci:<folder> mailbox).');
    skipHelpCache(cli);
    for (const spec of COMMANDS) {
      const name = commandName(spec);
      cli = cli.command(
        spec.command,
        spec.describe,
        (y: Argv) => {
          current = y;
          return loaded.get(name)?.builder(y, run) ?? y;
        },
        async (args) => {
          const cmd = loaded.get(name) ?? (await spec.load());
          if (cmd.run) await run(cmd.run)(args as never);
        },
      );
    }
    await cli
      // Shell completion answers `--get-yargs-completions`; the script itself comes from `comms completion`.
      .completion('__complete', false)
      .demandCommand(1, 'name a command (comms --help lists them all)')
      .strict()
      .recommendCommands()
      .version(VERSION)
      .help()
      .alias('h', 'help')
      .wrap(Math.min(110, process.stdout.columns || 100))
      .exitProcess(false)
      .fail((msg, err) => {
        if (err) throw err;
        // yargs checks required options before unknown ones, so `--recipent x` would read as a
        // missing --recipient: an option nobody defined is the first thing to report.
        const word = argv.find((a) => !a.startsWith('-'));
        if (current === undefined && word !== undefined && !COMMANDS.some((c) => commandName(c) === word)) {
          const near = closest(word, COMMANDS.map(commandName));
          throw new UsageError(`unknown command ${JSON.stringify(word)}${near ? ` (did you mean ${near}?)` : ''}; comms --help lists them all`);
        }
        const unknown = unknownOptions(argv, current ?? (cli as unknown as Argv));
        throw new UsageError(unknown ?? msg);
      })
      .parseAsync();
  } catch (err) {
    if (interrupted) {
      exit = EXIT_INTERRUPTED;
      reportInterrupt = true;
    } else if (!stdoutClosed) {
      exit = createOutput(wants).error(
        err instanceof Error && !(err instanceof UsageError) && (err as { name?: string }).name === 'YError' ? new UsageError(err.message) : err,
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (stdoutClosed) return EXIT_STDOUT_CLOSED;
  if (reportInterrupt) createOutput(wants).note('interrupted');
  return exit;
}
