/**
 * `comms mcp` driven by the MCP SDK's own Client over stdio: two servers, alice and bob, each
 * started as the CLI with its key, a trust file binding both, and an --out folder, exchange a signed
 * message and its reply through docker-registry and through comms serve. A forged reply (unsigned,
 * or signed by a key the trust file binds to someone else) is never returned by wait_for_reply.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { generateAgeIdentity, generateKeyPair, loadKeySigner, openRepository, reply, type Repository } from '../../src/index.ts';
import { backendKinds, startBackend, type Backend } from '../support/referrers-backends.ts';
import { cliEnv, PROJECT_ROOT, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

interface Result {
  isError?: boolean;
  content: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
}

/** Anything on a server's stdout that is not a protocol message is reported here (the client's onerror). */
const transportErrors: Error[] = [];

async function startAgent(args: string[], stderr: string[]): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['src/cli/run.ts', 'mcp', ...args],
    cwd: PROJECT_ROOT,
    env: cliEnv() as Record<string, string>,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (c: Buffer) => stderr.push(c.toString()));
  const client = new Client({ name: 'comms-test', version: '1.0.0' });
  client.onerror = (e) => transportErrors.push(e);
  await client.connect(transport);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Result> {
  return (await client.callTool({ name, arguments: args })) as Result;
}

async function callOk(client: Client, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await call(client, name, args);
  assert.notEqual(r.isError, true, `${name} failed: ${r.content.map((c) => c.text).join(' ')}`);
  return r.structuredContent!;
}

for (const kind of backendKinds()) {
  describe(`comms mcp on ${kind}`, () => {
    let backend: Backend;
    let work: TempDir;
    let repoRef: string;
    let repo: Repository;
    let alice: Client;
    let bob: Client;
    let malloryKey: string;
    const stderr: string[] = [];
    before(async () => {
      backend = await startBackend(kind);
      work = await tempDir('comms-mcp-');
      repoRef = backend.freshRepo('mcp');
      repo = await openRepository(repoRef, { create: true });
      const bobKey = path.join(work.path, 'bob.key');
      malloryKey = path.join(work.path, 'mallory.key');
      await generateKeyPair({ privateKeyPath: bobKey, publicKeyPath: path.join(work.path, 'bob.pub') });
      await generateKeyPair({ privateKeyPath: malloryKey, publicKeyPath: path.join(work.path, 'mallory.pub') });
      const trust = path.join(work.path, 'trust');
      const bobAge = await generateAgeIdentity();
      await writeFile(path.join(work.path, 'bob.age'), `${bobAge.identity}\n`, { mode: 0o600 });
      await writeFile(trust, `alice ${TEST_PUB}\nbob bob.pub\nbob ${bobAge.recipient}\nmallory mallory.pub\n`);
      for (const who of ['alice', 'bob']) await mkdir(path.join(work.path, who));
      const common = ['--repo', repoRef, '--trust', trust, '--interval', '200ms'];
      [alice, bob] = await Promise.all([
        startAgent([...common, '--me', 'alice', '--key', TEST_KEY, '--out', path.join(work.path, 'alice')], stderr),
        startAgent([...common, '--me', 'bob', '--key', bobKey, '--identity', path.join(work.path, 'bob.age'), '--out', path.join(work.path, 'bob')], stderr),
      ]);
    });
    after(async () => {
      await Promise.all([alice?.close(), bob?.close()]);
      await backend?.stop();
      await work?.cleanup();
    });

    it('alice and bob exchange a signed message and its reply, each verified as its sender', async () => {
      const tools = (await alice.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(tools, ['ack', 'list_messages', 'read_message', 'reply', 'send_message', 'thread', 'wait_for_reply']);
      const sent = await callOk(alice, 'send_message', { to: 'bob', text: 'build 42 passed?' });
      assert.match(String(sent['digest']), /^sha256:[0-9a-f]{64}$/);
      assert.equal(sent['signed'], true);

      const listed = (await callOk(bob, 'list_messages', { unread_only: true }))['messages'] as Record<string, unknown>[];
      const mine = listed.find((m) => m['digest'] === sent['digest']);
      assert.equal(mine?.['verified_sender'], 'alice');

      const read = await callOk(bob, 'read_message', { digest: sent['digest'] });
      assert.equal(read['text'], 'build 42 passed?');
      assert.equal(read['verified'], true);
      assert.equal(read['verified_sender'], 'alice');
      assert.equal(read['content_type'], 'text/plain; charset=utf-8');

      const unread = (await callOk(bob, 'list_messages', { unread_only: true }))['messages'] as Record<string, unknown>[];
      assert.ok(!unread.some((m) => m['digest'] === sent['digest']), 'a message read is no longer listed as unread');
      const all = (await callOk(bob, 'list_messages', { since: '1h' }))['messages'] as Record<string, unknown>[];
      assert.equal(all.find((m) => m['digest'] === sent['digest'])?.['read'], true);

      const answered = await callOk(bob, 'reply', { digest: sent['digest'], text: 'yes, all green' });
      assert.equal(answered['in_reply_to'], sent['digest']);
      const got = await callOk(alice, 'wait_for_reply', { digest: sent['digest'], timeout_seconds: 20 });
      assert.equal(got['digest'], answered['digest']);
      assert.equal(got['text'], 'yes, all green');
      assert.equal(got['verified_sender'], 'bob');
      assert.equal(got['in_reply_to'], sent['digest']);

      const receipt = await callOk(alice, 'ack', { digest: answered['digest'], status: 'accepted' });
      assert.equal(receipt['message_verified_sender'], 'bob');
      const tree = (await callOk(alice, 'thread', { digest: sent['digest'] }))['thread'] as {
        verified_sender: string;
        children: { digest: string; verified_sender: string; children: { kind: string }[] }[];
      };
      assert.equal(tree.verified_sender, 'alice');
      const replyNode = tree.children.find((c) => c.digest === answered['digest']);
      assert.equal(replyNode?.verified_sender, 'bob');
      assert.ok(
        replyNode?.children.some((c) => c.kind === 'receipt'),
        'the receipt hangs under the reply',
      );

      // Encrypted to bob's age key from the trust file, decrypted in bob's server with --identity.
      const secret = await callOk(alice, 'send_message', { to: 'bob', text: 'the launch code', encrypt: true });
      assert.equal(secret['encrypted'], true);
      const opened = await callOk(bob, 'read_message', { digest: secret['digest'] });
      assert.equal(opened['text'], 'the launch code');
      assert.equal(opened['verified_sender'], 'alice');
      assert.deepEqual(transportErrors, [], 'stdout carried nothing but the protocol');
    });

    it('wait_for_reply passes over forged replies (unsigned; signed by the key bound to mallory), however many, and returns the genuine one', async () => {
      const sent = await callOk(alice, 'send_message', { to: 'bob', json: { question: 'ship it?' } });
      const to = String(sent['digest']);
      await reply({ repository: repo, to, recipient: 'alice', sender: 'bob', input: { text: 'forged: mallory' }, signer: await loadKeySigner(malloryKey) });
      // More unsigned forgeries than one poll examines: they must not keep the genuine reply out.
      for (let i = 0; i < 16; i++)
        await reply({ unsigned: true, repository: repo, to, recipient: 'alice', sender: 'bob', input: { text: `forged: unsigned ${i}` } });
      const timedOut = await call(alice, 'wait_for_reply', { digest: sent['digest'], timeout_seconds: 2 });
      assert.equal(timedOut.isError, true);
      assert.match(timedOut.content[0]!.text!, /TIMEOUT: no verified reply .*passed over \d+ that did not verify/);

      const asked = await callOk(bob, 'read_message', { digest: sent['digest'] });
      assert.deepEqual(asked['json'], { question: 'ship it?' });
      const genuine = await callOk(bob, 'reply', { digest: sent['digest'], text: 'ship it' });
      const got = await callOk(alice, 'wait_for_reply', { digest: sent['digest'], timeout_seconds: 40 });
      assert.equal(got['digest'], genuine['digest']);
      assert.equal(got['text'], 'ship it');
      assert.equal(got['verified_sender'], 'bob');
    });

    it('refusals come back as tool errors and the server goes on; no file is read or written outside the allowed folders', async () => {
      const bad = await call(bob, 'read_message', { digest: 'sha256:nothex' });
      assert.equal(bad.isError, true);
      const outside = await call(alice, 'send_message', { to: 'bob', file: TEST_KEY });
      assert.equal(outside.isError, true);
      assert.match(outside.content[0]!.text!, /PATH_NOT_ALLOWED/);
      const climbing = await call(alice, 'send_message', { to: 'bob', file: '../trust' });
      assert.equal(climbing.isError, true);
      // A binary file sent from alice's --out lands in bob's --out, nowhere else.
      await writeFile(path.join(work.path, 'alice', 'blob.bin'), Buffer.from([0, 1, 2, 255]));
      const sent = await callOk(alice, 'send_message', { to: 'bob', file: 'blob.bin' });
      const read = await callOk(bob, 'read_message', { digest: sent['digest'] });
      assert.equal(read['saved_to'], path.join(await realOut(work.path, 'bob'), 'blob.bin'));
      assert.deepEqual(await readdir(path.join(work.path, 'bob')), ['blob.bin']);
      assert.equal((await callOk(bob, 'list_messages', {}))['messages'] !== undefined, true, 'the server still answers');
    });
  });
}

async function realOut(base: string, who: string): Promise<string> {
  const { realpath } = await import('node:fs/promises');
  return realpath(path.join(base, who));
}
