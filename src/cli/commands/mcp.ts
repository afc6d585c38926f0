/**
 * comms mcp: a Model Context Protocol server over stdio, so an agent (an MCP client) can send,
 * list, read, answer, await and acknowledge messages in one mailbox as one identity (--me).
 *
 * It is configured like the other commands (--repo, --me, --key, the verification flags or a
 * trust file, --identity, --out) and prints nothing on stdout but the protocol. Every tool result
 * names the digest(s) it concerns and the verified sender (null when not verified); content that
 * did not verify is never returned as verified — it is refused, or, only with --no-verify, returned
 * marked `verified: false`. Files are written only into --out, and sent only from --out or a
 * --send-from folder. A failing tool call is an MCP tool error (isError) with the reason; the
 * server goes on.
 */
import { lstat, realpath, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv } from 'yargs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import type { Descriptor } from '../../oci/descriptor.ts';
import type { Repository } from '../../oci/target.ts';
import { Annotation, ArtifactType, ExtensionAnnotation, TagPrefix } from '../../protocol/constants.ts';
import { annotationsExpired } from '../../protocol/expiry.ts';
import { alternativeFilename } from '../../protocol/filename.ts';
import { inboxPrefix } from '../../protocol/tags.ts';
import { parseMessageManifest } from '../../protocol/validate.ts';
import type { MessageSigner } from '../../trust/signer.ts';
import type { TrustPolicy } from '../../trust/verify.ts';
import type { AgeIdentities } from '../../trust/age.ts';
import { CommsError, NotFoundError, UsageError, VerificationError } from '../../errors.ts';
import { isVerdictOnArtifact } from '../../comms/refusal.ts';
import { ack } from '../../comms/ack.ts';
import { findReferrers } from '../../comms/discover.ts';
import { prepareOutDir } from '../../comms/out-dir.ts';
import { readMessage, type MessageContent } from '../../comms/read-message.ts';
import { reply } from '../../comms/reply.ts';
import { send, type SendInput } from '../../comms/send.ts';
import { TagSnapshot } from '../../comms/tag-snapshot.ts';
import { thread, type ThreadNode } from '../../comms/thread.ts';
import { verifyMessage } from '../../comms/verify-message.ts';
import { mapLimit } from '../../util/pool.ts';
import { checkAborted, sleep } from '../../util/abort.ts';
import { VERSION } from '../../version.ts';
import {
  openRepo,
  resolvePolicy,
  resolveSigner,
  withGlobalOptions,
  withSignOptions,
  withVerifyOptions,
  type GlobalArgs,
  type SignArgs,
  type VerifyArgs,
} from '../common.ts';
import { parseDuration, parseSince, parseSize } from '../parse.ts';
import type { Output } from '../output.ts';
import { resolveIdentities } from './recv.ts';

export interface McpArgs extends GlobalArgs, SignArgs, VerifyArgs {
  repo: string;
  me: string;
  out?: string;
  'send-from'?: string[];
  identity?: string[];
  'max-bytes': string;
  interval: string;
}

/** Messages listed (newest first) and verified by one list_messages call. */
const MAX_LISTED = 100;
/** Replies examined per poll of wait_for_reply. */
const MAX_REPLIES_TRIED = 16;
/**
 * How long a reply that fails verification is tried again (its bundle may still be on its way: a
 * reply is indexed before it is signed); after that it is passed over without another look, so
 * that a pile of forged replies cannot keep the genuine one out of the MAX_REPLIES_TRIED window.
 */
const REPLY_BUNDLE_GRACE_MS = 10_000;
/** Nodes of a thread whose signatures are checked. */
const MAX_THREAD_VERIFIED = 64;
const MAX_WAIT_SECONDS = 3600;

export function mcpBuilder(y: Argv) {
  return withVerifyOptions(withSignOptions(withGlobalOptions(y)))
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('me', { type: 'string', demandOption: true, describe: 'Your identity: messages are sent as it and read from its inbox' })
    .option('out', { type: 'string', describe: 'Folder where read_message saves messages that are not text (nothing is written anywhere else)' })
    .option('send-from', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'Folder send_message may send files from (besides --out); repeatable. Without one, only --out',
    })
    .option('identity', {
      type: 'string',
      array: true,
      requiresArg: true,
      alias: 'i',
      describe: 'Decrypt encrypted messages with the age identities in this file; repeatable (also COMMS_AGE_IDENTITY, COMMS_AGE_IDENTITY_FILE)',
    })
    .option('max-bytes', { type: 'string', default: '16MiB', describe: 'Largest message read_message and wait_for_reply download (suffixes KiB, MiB, GiB)' })
    .option('interval', { type: 'string', default: '2s', describe: 'How often wait_for_reply polls' })
    .example('$0 mcp --repo ghcr.io/acme/agents --me planner --key planner.key --trust ./trust --out ./inbox', 'an MCP server for an agent called planner');
}

interface Context {
  repository: Repository;
  me: string;
  signer: MessageSigner | undefined;
  /** false: --no-verify (unverified content is returned, marked verified: false). */
  policy: TrustPolicy | false;
  identities: AgeIdentities | undefined;
  outDir: string | undefined;
  sendFrom: string[];
  maxBytes: number;
  intervalMs: number;
  /** Digests read in this session (list_messages' unread_only). */
  read: Set<string>;
  /** Replies that did not verify, and when they first failed (wait_for_reply). */
  refusedReplies: Map<string, number>;
  signal: AbortSignal;
}

export async function runMcp(args: McpArgs, out: Output, signal: AbortSignal): Promise<number> {
  if (args.me === '') throw new UsageError('--me must not be empty');
  const maxBytes = parseSize('--max-bytes', args['max-bytes']);
  const intervalMs = parseDuration('--interval', args.interval);
  const policy = await resolvePolicy(args);
  if (policy === false) out.note('--no-verify: messages are returned unverified (marked verified: false)');
  const signer = await resolveSigner(args);
  if (signer === undefined) out.note('--no-sign: messages sent through this server are NOT signed; recipients that verify will refuse them');
  const identities = await resolveIdentities(args.identity);
  if (args.out !== undefined) await prepareOutDir(args.out);
  const outDir = args.out === undefined ? undefined : await realFolder('--out', args.out);
  const sendFrom = [...(outDir === undefined ? [] : [outDir]), ...(await Promise.all((args['send-from'] ?? []).map((d) => realFolder('--send-from', d))))];
  const repository = await openRepo(args.repo, args, { create: true });
  const ctx: Context = {
    repository,
    me: args.me,
    signer,
    policy,
    identities,
    outDir,
    sendFrom,
    maxBytes,
    intervalMs,
    read: new Set(),
    refusedReplies: new Map(),
    signal,
  };

  const server = createMcpServer(ctx);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.connect(transport);
  await closed;
  await server.close().catch(() => undefined);
  return 0;
}

async function realFolder(flag: string, dir: string): Promise<string> {
  const real = await realpath(dir).catch((cause: unknown) => {
    throw new UsageError(`${flag} ${dir}: ${(cause as NodeJS.ErrnoException).code ?? 'cannot be resolved'}`, { cause });
  });
  if (!(await lstat(real)).isDirectory()) throw new UsageError(`${flag} ${dir} is not a folder`);
  return real;
}

type ToolResult = { content: { type: 'text'; text: string }[]; structuredContent?: Record<string, unknown>; isError?: boolean };

/** A tool's answer: its JSON as text (what every client shows) and as structured content. */
function ok(value: Record<string, unknown>): ToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: value };
}

/** Any failure as a tool error carrying its reason (and code): the server itself goes on. */
async function guarded(run: () => Promise<ToolResult>): Promise<ToolResult> {
  try {
    return await run();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const code = err instanceof CommsError ? err.code : undefined;
    return { content: [{ type: 'text', text: code === undefined ? reason : `${code}: ${reason}` }], isError: true };
  }
}

export function createMcpServer(ctx: Context): McpServer {
  const server = new McpServer({ name: 'comms', version: VERSION });

  server.registerTool(
    'send_message',
    {
      description: `Send a message to a recipient in the mailbox, signed as ${ctx.me}. Give text, json, or file (a path under an allowed folder).`,
      inputSchema: {
        to: z.string().min(1).describe('The recipient identity'),
        text: z.string().optional().describe('The message text'),
        json: z.unknown().optional().describe('A JSON value to send (as message.json, application/json)'),
        file: z.string().optional().describe('Path of a file to send, under --out or a --send-from folder'),
        encrypt: z.boolean().optional().describe('Encrypt (age) to the recipient keys the trust file binds to `to`'),
      },
    },
    (a) =>
      guarded(async () => {
        const given = [a.text !== undefined, a.json !== undefined, a.file !== undefined].filter(Boolean).length;
        if (given !== 1) throw new UsageError('give exactly one of text, json or file');
        const input: SendInput =
          a.text !== undefined ? { text: a.text } : a.json !== undefined ? { json: a.json } : { path: await allowedFile(ctx, a.file as string) };
        const trust = ctx.policy === false ? undefined : ctx.policy.trust;
        const r = await send({
          repository: ctx.repository,
          recipient: a.to,
          sender: ctx.me,
          input,
          ...(ctx.signer !== undefined ? { signer: ctx.signer } : { unsigned: true }),
          ...(a.encrypt === true ? { encrypt: true } : {}),
          ...(trust === undefined ? {} : { trust }),
          signal: ctx.signal,
        });
        return ok({ digest: r.digest, to: a.to, sender: ctx.me, signed: r.bundle !== undefined, encrypted: r.encrypted, bytes: r.bytes });
      }),
  );

  server.registerTool(
    'list_messages',
    {
      description: `List messages in ${ctx.me}'s inbox, newest first (at most ${MAX_LISTED}), each with its verified sender (null when its signature does not verify).`,
      inputSchema: {
        since: z.string().optional().describe('Only messages created since this RFC 3339 time or duration (30m, 2h, 7d)'),
        unread_only: z.boolean().optional().describe('Only messages not yet read through this server'),
      },
    },
    (a) =>
      guarded(async () => {
        const since = a.since === undefined ? undefined : parseSince(a.since);
        const messages = await listInbox(ctx, since, a.unread_only === true);
        return ok({ messages });
      }),
  );

  server.registerTool(
    'read_message',
    {
      description: 'Read one message by digest: verified first; returns its text (or JSON), or where a binary file was saved under --out.',
      inputSchema: { digest: z.string().describe('The message digest (sha256:…)') },
    },
    (a) => guarded(async () => ok(await present(ctx, await read(ctx, a.digest)))),
  );

  server.registerTool(
    'reply',
    {
      description: `Reply to a message (by digest) with a text, signed as ${ctx.me}; the reply goes to the message's verified sender.`,
      inputSchema: { digest: z.string().describe('The message answered'), text: z.string().describe('The reply text') },
    },
    (a) =>
      guarded(async () => {
        // The reply goes to the message's verified sender (refused when it does not verify), or with
        // --no-verify to the sender it claims; a reply to an encrypted message is encrypted to the age
        // recipients the trust file binds to its sender.
        const trust = ctx.policy === false ? undefined : ctx.policy.trust;
        const r = await reply({
          repository: ctx.repository,
          inReplyTo: a.digest,
          sender: ctx.me,
          input: { text: a.text },
          ...(ctx.policy === false ? { unverifiedRecipient: true } : { policy: ctx.policy }),
          ...(ctx.signer !== undefined ? { signer: ctx.signer } : { unsigned: true }),
          ...(trust === undefined ? {} : { trust }),
          signal: ctx.signal,
        });
        return ok({ digest: r.digest, in_reply_to: r.inReplyTo, to: r.recipient, sender: ctx.me, signed: r.bundle !== undefined });
      }),
  );

  server.registerTool(
    'wait_for_reply',
    {
      description: 'Wait until a verified reply to a message (by digest) arrives, and return it. Replies that do not verify are passed over.',
      inputSchema: {
        digest: z.string().describe('The message whose reply is awaited'),
        timeout_seconds: z.number().positive().max(MAX_WAIT_SECONDS).optional().describe(`How long to wait (default 60, at most ${MAX_WAIT_SECONDS})`),
      },
    },
    (a, extra) =>
      guarded(async () => {
        // A client that cancels the call (or times it out) stops the wait.
        const found = await waitForVerifiedReply({ ...ctx, signal: AbortSignal.any([ctx.signal, extra.signal]) }, a.digest, (a.timeout_seconds ?? 60) * 1000);
        return ok({ in_reply_to: a.digest, ...(await present(ctx, found)) });
      }),
  );

  server.registerTool(
    'ack',
    {
      description: `Push a receipt for a message (by digest), signed as ${ctx.me}.`,
      inputSchema: { digest: z.string().describe('The message acknowledged'), status: z.enum(['accepted', 'rejected']).describe('accepted or rejected') },
    },
    (a) =>
      guarded(async () => {
        // A receipt says whether the message verified: it is checked here, not assumed.
        const fetched = await ctx.repository.fetchManifest(a.digest, { signal: ctx.signal });
        const info = parseMessageManifest(fetched.bytes);
        const signer = await verifiedSigner(ctx, fetched.descriptor, fetched.bytes, info.sender);
        const r = await ack({
          repository: ctx.repository,
          forDigest: a.digest,
          status: a.status,
          verified: signer !== null,
          sender: ctx.me,
          recipient: info.sender,
          ...(ctx.signer !== undefined ? { signer: ctx.signer } : { unsigned: true }),
          message: { descriptor: fetched.descriptor, bytes: fetched.bytes },
          signal: ctx.signal,
        });
        return ok({ digest: r.digest, for: a.digest, status: a.status, message_verified_sender: signer, sender: ctx.me });
      }),
  );

  server.registerTool(
    'thread',
    {
      description:
        'The conversation of a message (by digest): replies and receipts as a tree, each message with its verified sender (null when it does not verify).',
      inputSchema: { digest: z.string().describe('Any message of the thread (its root for the whole conversation)') },
    },
    (a) =>
      guarded(async () => {
        const root = await thread(ctx.repository, a.digest, { signal: ctx.signal });
        let budget = MAX_THREAD_VERIFIED;
        const walk = async (n: ThreadNode): Promise<Record<string, unknown> | undefined> => {
          if (n.kind === 'bundle') return undefined;
          const node: Record<string, unknown> = {
            digest: n.digest,
            kind: n.kind,
            claimed_sender: n.sender ?? null,
            recipient: n.recipient ?? null,
            created_at: n.createdAt ?? null,
          };
          if (n.kind === 'receipt') Object.assign(node, { status: n.status ?? null, for: n.annotations[Annotation.ReceiptFor] ?? null });
          if (n.filename !== undefined) node['filename'] = n.filename;
          if (budget > 0) {
            budget--;
            const fetched = await ctx.repository.fetchManifest(n.digest, { signal: ctx.signal });
            node['verified_sender'] = await verifiedSigner(ctx, fetched.descriptor, fetched.bytes, n.sender);
          } else {
            node['verified_sender'] = null;
            node['note'] = `not checked: only the first ${MAX_THREAD_VERIFIED} artifacts of a thread are verified`;
          }
          const children = [];
          for (const c of n.children) {
            const w = await walk(c);
            if (w !== undefined) children.push(w);
          }
          node['children'] = children;
          return node;
        };
        return ok({ digest: a.digest, thread: (await walk(root)) ?? {} });
      }),
  );

  return server;
}

/** A path send_message may read: a regular file whose real path lies in --out or a --send-from folder. */
async function allowedFile(ctx: Context, file: string): Promise<string> {
  if (ctx.sendFrom.length === 0) throw new UsageError('sending files is off: start comms mcp with --out or --send-from FOLDER', { code: 'PATH_NOT_ALLOWED' });
  const real = await realpath(path.resolve(ctx.sendFrom[0] as string, file)).catch((cause: unknown) => {
    throw new UsageError(`${file}: ${(cause as NodeJS.ErrnoException).code ?? 'cannot be resolved'}`, { cause });
  });
  if (!ctx.sendFrom.some((dir) => real.startsWith(dir + path.sep))) {
    throw new UsageError(`${file} is outside the folders files may be sent from (${ctx.sendFrom.join(', ')})`, { code: 'PATH_NOT_ALLOWED' });
  }
  return real;
}

/** The signer's verified identity, or null: a message that does not verify (or --no-verify). */
async function verifiedSigner(
  ctx: Context,
  descriptor: Descriptor,
  bytes: Uint8Array,
  sender: string | undefined,
  snapshot?: TagSnapshot,
): Promise<string | null> {
  if (ctx.policy === false) return null;
  try {
    return (
      await verifyMessage(ctx.repository, descriptor, bytes, {
        policy: ctx.policy,
        ...(sender === undefined ? {} : { sender }),
        ...(snapshot === undefined ? {} : { snapshot }),
        signal: ctx.signal,
      })
    ).identity;
  } catch (err) {
    if (err instanceof VerificationError) return null;
    throw err;
  }
}

async function read(ctx: Context, digest: string): Promise<MessageContent> {
  const m = await readMessage(ctx.repository, digest, {
    verify: ctx.policy,
    allowUnverified: ctx.policy === false,
    maxBytes: ctx.maxBytes,
    ...(ctx.identities === undefined ? {} : { identities: ctx.identities }),
    signal: ctx.signal,
  });
  ctx.read.add(digest);
  return m;
}

/** A message as a tool result: its text or JSON when it is text, else saved under --out. */
async function present(ctx: Context, m: MessageContent): Promise<Record<string, unknown>> {
  const about: Record<string, unknown> = {
    digest: m.digest,
    verified: m.verified,
    verified_sender: m.verifiedSender,
    claimed_sender: m.sender,
    recipient: m.recipient,
    created_at: m.createdAt,
    filename: m.filename,
    content_type: m.contentType ?? null,
    size: m.size,
  };
  if (m.replyTo !== undefined) about['in_reply_to'] = m.replyTo;
  if (m.unverifiedReason !== undefined) about['unverified_reason'] = m.unverifiedReason;
  if (m.encrypted && !m.decrypted) {
    return { ...about, ...(await save(ctx, m)), note: 'encrypted, not decrypted: start comms mcp with --identity to read it' };
  }
  if (m.contentType?.startsWith('application/json') === true) {
    try {
      return { ...about, json: m.json(), text: m.text() };
    } catch {
      return { ...about, text: m.text(), note: 'declared application/json, but is not JSON' };
    }
  }
  if (isText(m)) return { ...about, text: m.text() };
  return { ...about, ...(await save(ctx, m)) };
}

function isText(m: MessageContent): boolean {
  const type = m.contentType?.toLowerCase();
  if (type !== undefined) return type.startsWith('text/') || type.includes('+json') || type.startsWith('application/json');
  if (!/\.(txt|md|json|csv|log|ya?ml)$/i.test(m.filename)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(m.bytes());
    return true;
  } catch {
    return false;
  }
}

/** Writes the content into --out under its (already checked) filename, never over an existing file. */
async function save(ctx: Context, m: MessageContent): Promise<{ saved_to: string }> {
  if (ctx.outDir === undefined)
    throw new UsageError(`message ${m.digest} (${m.filename}) is not text: start comms mcp with --out FOLDER to save such messages`, { code: 'OUT_INVALID' });
  const bytes = m.bytes();
  for (let n = 0; n < 10000; n++) {
    const target = path.join(ctx.outDir, n === 0 ? m.filename : alternativeFilename(m.filename, n));
    if (path.dirname(target) !== ctx.outDir) throw new UsageError(`refusing the filename ${JSON.stringify(m.filename)}`, { code: 'PATH_NOT_ALLOWED' });
    try {
      await writeFile(target, bytes, { flag: 'wx' });
      return { saved_to: target };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      await unlink(target).catch(() => undefined);
      throw err;
    }
  }
  throw new UsageError(`no free name for ${m.filename} in ${ctx.outDir}`, { code: 'FILE_EXISTS' });
}

interface Listed {
  digest: string;
  claimed_sender: string;
  verified_sender: string | null;
  created_at: string;
  filename: string;
  content_type: string | null;
  size: number;
  in_reply_to: string | null;
  read: boolean;
}

async function listInbox(ctx: Context, since: Date | undefined, unreadOnly: boolean): Promise<Listed[]> {
  const prefix = inboxPrefix(ctx.me);
  // One tag listing serves the inbox and every message's v1.0-style bundle tags.
  const snapshot = await TagSnapshot.load(ctx.repository, { signal: ctx.signal, prefixes: [prefix, TagPrefix.Bundle] });
  const now = new Date();
  const fetched = await mapLimit(
    snapshot.withPrefix(prefix),
    8,
    async (tag) => {
      try {
        const m = await ctx.repository.fetchManifest(tag, { signal: ctx.signal });
        return { m, info: parseMessageManifest(m.bytes) };
      } catch (err) {
        // A message deleted since the listing, or one that is not a valid message, is not listed.
        if (err instanceof NotFoundError || isVerdictOnArtifact(err)) return undefined;
        throw err;
      }
    },
    ctx.signal,
  );
  const seen = new Set<string>();
  const chosen = fetched
    .filter((x): x is NonNullable<typeof x> => x !== undefined)
    .filter((x) => x.info.recipient === ctx.me && !annotationsExpired(x.info.annotations, now))
    .filter((x) => since === undefined || x.info.createdAt.getTime() >= since.getTime())
    .filter((x) => !unreadOnly || !ctx.read.has(x.m.descriptor.digest))
    .filter((x) => {
      if (seen.has(x.m.descriptor.digest)) return false;
      seen.add(x.m.descriptor.digest);
      return true;
    })
    .sort((a, b) => b.info.createdAt.getTime() - a.info.createdAt.getTime())
    .slice(0, MAX_LISTED);
  return mapLimit(
    chosen,
    4,
    async ({ m, info }) => ({
      digest: m.descriptor.digest,
      claimed_sender: info.sender,
      verified_sender: await verifiedSigner(ctx, m.descriptor, m.bytes, info.sender, snapshot),
      created_at: info.createdAt.toISOString(),
      filename: info.filename,
      content_type: info.annotations[ExtensionAnnotation.ContentType] ?? null,
      size: info.totalBytes,
      in_reply_to: info.replyTo ?? null,
      read: ctx.read.has(m.descriptor.digest),
    }),
    ctx.signal,
  );
}

/**
 * Polls for replies to `digest` (addressed to --me) until one verifies under the policy. A reply
 * that does not verify (unsigned, signed by a key bound to someone else, or its bundle not pushed
 * yet) is passed over and looked at again on later polls for REPLY_BUNDLE_GRACE_MS; at most
 * MAX_REPLIES_TRIED per poll, oldest first. With --no-verify the first reply is returned, marked unverified.
 */
async function waitForVerifiedReply(ctx: Context, digest: string, timeoutMs: number): Promise<MessageContent> {
  const original = await ctx.repository.fetchManifest(digest, { signal: ctx.signal });
  const subject: Descriptor = { mediaType: original.descriptor.mediaType, digest: original.descriptor.digest, size: original.descriptor.size };
  const deadline = Date.now() + timeoutMs;
  const refused = ctx.refusedReplies;
  const passedOver = new Set<string>();
  for (;;) {
    checkAborted(ctx.signal);
    const now = new Date();
    const found = (
      await findReferrers(ctx.repository, subject, { artifactType: ArtifactType.Message, replies: true, replyRecipients: [ctx.me], signal: ctx.signal })
    )
      .filter((d) => !annotationsExpired(d.annotations, now))
      .filter((d) => now.getTime() - (refused.get(d.digest) ?? now.getTime()) <= REPLY_BUNDLE_GRACE_MS)
      .sort((a, b) => (a.annotations?.[Annotation.CreatedAt] ?? '').localeCompare(b.annotations?.[Annotation.CreatedAt] ?? ''))
      .slice(0, MAX_REPLIES_TRIED);
    for (const d of found) {
      try {
        return await read(ctx, d.digest);
      } catch (err) {
        if (!(err instanceof VerificationError)) throw err;
        if (!refused.has(d.digest)) refused.set(d.digest, Date.now());
        passedOver.add(d.digest);
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const passed = passedOver.size === 0 ? '' : ` (passed over ${passedOver.size} that did not verify: ${[...passedOver].join(', ')})`;
      throw new CommsError(`no verified reply to ${digest} within ${Math.round(timeoutMs / 1000)} s${passed}`, { code: 'TIMEOUT' });
    }
    await sleep(Math.min(ctx.intervalMs, left), ctx.signal);
  }
}
