/**
 * thread and dockercomms v1.0's receipts, on real docker-registry. v1.0's `recv` writes a receipt
 * that copies the message's own sender and recipient (fixtures/v1/receipt: "from" alice, the very
 * sender of the message it answers), and its `ack` names both parties `unknown`. thread must not
 * present either as coming from the message's sender (or from someone called "unknown"); a comms
 * receipt, which names who acknowledged, keeps its sender.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { ack, thread, type ThreadNode } from '../../src/index.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { runComms } from '../support/cli.ts';
import { rawPushBlob, rawPushManifest } from '../support/messages-raw.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage } from '../support/tools.ts';

const V1 = new URL('../../fixtures/v1/', import.meta.url);
const MESSAGE_DIGEST = 'sha256:29da45c0499626c691622262ad7820bff097054b61aaf35b8d65e554b8cc29ba';

describe('thread with v1.0 receipts (docker-registry)', () => {
  let registry: RegistryServer | undefined;
  before(async () => {
    if (requireTool('docker-registry')) registry = await startRegistry({ mode: 'plain' });
  });
  after(async () => {
    await registry?.stop();
  });

  it("a v1.0 recv receipt (the message's own parties copied) and a v1.0 ack receipt (unknown) are not shown as from the message's sender", async (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    const base = `http://${registry.host}`;
    const repo = 'thread/v1receipts';
    // The v1.0 message and v1.0's own receipt for it, byte for byte, under their v1.0 tags.
    await rawPushBlob(base, repo, Buffer.from('{}'));
    for (const hex of await readdir(new URL('message/blobs/', V1))) await rawPushBlob(base, repo, await readFile(new URL(`message/blobs/${hex}`, V1)));
    await rawPushManifest(base, repo, (await readFile(new URL('message/tag', V1), 'utf8')).trim(), await readFile(new URL('message/manifest.json', V1)));
    const recvReceipt = await readFile(new URL('receipt/manifest.json', V1));
    const recvDigest = await rawPushManifest(base, repo, (await readFile(new URL('receipt/tag', V1), 'utf8')).trim(), recvReceipt);
    // What v1.0's `ack` writes: the same receipt with both parties `unknown`.
    const ackJson = JSON.parse(recvReceipt.toString('utf8')) as { annotations: Record<string, string> };
    ackJson.annotations['dockercomms.sender'] = 'unknown';
    ackJson.annotations['dockercomms.recipient'] = 'unknown';
    const ackDigest = await rawPushManifest(base, repo, 'receipt-29da45c04996-1748779300-abcdef', Buffer.from(JSON.stringify(ackJson)));

    const client = new RegistryClient({ plainHttp: true });
    try {
      const repository = client.repository(`${registry.host}/${repo}`);
      // A comms receipt from bob names who acknowledged.
      const mine = await ack({
        unsigned: true,
        repository,
        forDigest: MESSAGE_DIGEST,
        status: 'accepted',
        verified: false,
        sender: 'bob',
        recipient: 'alice@example.com',
      });
      const root = await thread(repository, MESSAGE_DIGEST);
      assert.equal(root.sender, 'alice@example.com');
      const byDigest = new Map<string, ThreadNode>(root.children.map((c) => [c.digest, c]));
      for (const d of [recvDigest, ackDigest]) {
        const node = byDigest.get(d);
        assert.ok(node, `receipt ${d} in the thread`);
        assert.equal(node.kind, 'receipt');
        assert.equal(node.sender, undefined, `${d}: no sender presented`);
        assert.equal(node.recipient, undefined);
        assert.equal(node.partiesUnnamed, true);
        assert.equal(node.status, 'accepted');
      }
      const comms = byDigest.get(mine.digest);
      assert.equal(comms?.sender, 'bob');
      assert.equal(comms?.partiesUnnamed, undefined);

      // The CLI's tree says so in words, and never "receipt … from alice@example.com" or "from unknown".
      const r = await runComms(['thread', '--repo', `${registry.host}/${repo}`, '--plain-http', MESSAGE_DIGEST]);
      assert.equal(r.code, 0, r.stderr);
      const receiptLines = r.stdout.split('\n').filter((l) => l.includes('receipt '));
      assert.equal(receiptLines.length, 3, r.stdout);
      assert.equal(receiptLines.filter((l) => l.includes('from (not named in the receipt)')).length, 2, r.stdout);
      assert.ok(
        receiptLines.some((l) => l.includes('from bob')),
        r.stdout,
      );
      assert.ok(!receiptLines.some((l) => /from (alice@example\.com|unknown)/.test(l)), r.stdout);
    } finally {
      await client.close();
    }
  });
});
