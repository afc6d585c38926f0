/**
 * Audit receipts on disk and step callbacks: send, reply, ack and copy each write one JSON file
 * (digest, reference, tag, sizes, times, signer, client) into the audit folder; a folder that is a
 * symbolic link is refused before anything is pushed; COMMS_RECEIPT_DIR works like --receipt-dir;
 * onStep reports every stage of send, reply, ack, copy and receive in order, and --verbose prints
 * them. Run on oci: folders and on docker-registry (the tag-schema index step).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ack, copy, loadKeySigner, openRepository, receive, reply, send, VERSION, type MessageSigner, type OnStep } from '../../src/index.ts';
import { AUDIT_SCHEMA, auditFileName, type AuditReceipt } from '../../src/comms/audit.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { backendKinds, startBackend, type Backend } from '../support/referrers-backends.ts';
import { describeRun } from '../support/cli.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

async function receipts(dir: string): Promise<AuditReceipt[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8')) as AuditReceipt));
}

function recorder(): { onStep: OnStep; events: string[] } {
  const events: string[] = [];
  return { events, onStep: (step, state) => events.push(`${step}:${state}`) };
}

/** Each step that started also ended, after it started; the steps appear in this order. */
function assertSteps(events: string[], order: string[]): void {
  for (const step of order) {
    const s = events.indexOf(`${step}:started`);
    const d = events.lastIndexOf(`${step}:done`);
    assert.ok(s >= 0 && d > s, `${step} started then done in ${events.join(' ')}`);
  }
  const firstStarts = order.map((step) => events.indexOf(`${step}:started`));
  assert.deepEqual(
    [...firstStarts].sort((a, b) => a - b),
    firstStarts,
    `steps in the order ${order.join(', ')}: ${events.join(' ')}`,
  );
  assert.ok(!events.some((e) => e.endsWith(':failed')));
}

describe('audit receipts and steps', () => {
  let dir: TempDir;
  let signer: MessageSigner & { keyId?: string };
  let backend: Backend;
  before(async () => {
    dir = await tempDir('comms-audit-');
    signer = await loadKeySigner(TEST_KEY);
    backend = await startBackend(backendKinds()[0]!);
  });
  after(async () => {
    await backend?.stop();
    await dir?.cleanup();
  });

  it('send, reply, ack and copy each write one receipt with digest, reference, tag, sizes, times, signer and client', async () => {
    const audit = join(dir.path, 'audit');
    const repository = await openRepository(backend.freshRepo('audit'));
    const sendSteps = recorder();
    const sent = await send({ repository, recipient: 'bob', sender: 'alice', input: { text: 'audited' }, signer, auditDir: audit, onStep: sendSteps.onStep });
    // A signed message has no subject: it is stored by its tag push, after its bundle (SPEC §8).
    assertSteps(sendSteps.events, ['compress', 'upload', 'sign', 'push-bundle', 'tag', 'write-receipt']);
    assert.ok(!sendSteps.events.includes('push-manifest:started'), sendSteps.events.join(' '));
    const replySteps = recorder();
    const answered = await reply({
      repository,
      to: sent.digest,
      recipient: 'alice',
      sender: 'bob',
      input: { text: 'ok' },
      signer,
      auditDir: audit,
      onStep: replySteps.onStep,
    });
    // A signed reply (it has a subject) is pushed under its tag after its bundle, and listed as a
    // referrer by that same push (SPEC §8, §9.1).
    assertSteps(replySteps.events, ['compress', 'upload', 'sign', 'push-bundle', 'push-manifest', 'index', 'write-receipt']);
    const ackSteps = recorder();
    const receipt = await ack({
      unsigned: true,
      repository,
      forDigest: sent.digest,
      status: 'accepted',
      sender: 'bob',
      auditDir: audit,
      onStep: ackSteps.onStep,
    });
    assertSteps(ackSteps.events, ['push-manifest', 'index', 'write-receipt']);
    const folder = `oci:${join(dir.path, 'copied')}`;
    const copySteps = recorder();
    const copied = await copy({
      source: repository,
      destination: await openRepository(folder, { create: true }),
      reference: sent.tag,
      auditDir: audit,
      onStep: copySteps.onStep,
    });
    assertSteps(copySteps.events, ['fetch-manifest', 'upload', 'push-manifest', 'index', 'tag', 'write-receipt']);

    const st = await lstat(audit);
    assert.equal(st.mode & 0o777, 0o700, 'the folder is created private');
    const all = await receipts(audit);
    assert.deepEqual(all.map((r) => r.operation).sort(), ['ack', 'copy', 'reply', 'send']);
    for (const r of all) {
      assert.equal(r.schema, AUDIT_SCHEMA);
      assert.equal(r.client.name, 'comms');
      assert.equal(r.client.version, VERSION);
      assert.equal(r.client.os, process.platform);
      assert.equal(r.client.arch, process.arch);
      assert.ok(Date.parse(r.finishedAt) >= Date.parse(r.startedAt));
      assert.equal(r.durationMs, Date.parse(r.finishedAt) - Date.parse(r.startedAt));
      assert.equal(r.reference, `${r.repository}@${r.digest}`);
    }
    const byOp = new Map(all.map((r) => [r.operation, r]));
    const s = byOp.get('send')!;
    assert.equal(s.digest, sent.digest);
    assert.equal(s.tag, sent.tag);
    assert.equal(s.repository, repository.name);
    assert.equal(s.sizes.payload, Buffer.byteLength('audited'));
    assert.equal(s.sizes.manifest, sent.descriptor.size);
    assert.deepEqual(s.signer, { kind: 'key', keyId: signer.keyId, bundleDigest: sent.bundle!.digest });
    assert.equal(byOp.get('reply')!.digest, answered.digest);
    assert.equal(byOp.get('reply')!.subject, sent.digest);
    assert.equal(byOp.get('ack')!.digest, receipt.digest);
    assert.equal(byOp.get('ack')!.signer, null, 'an unsigned receipt names no signer');
    assert.equal(byOp.get('copy')!.digest, copied.digest);
    assert.equal(byOp.get('copy')!.source, repository.name);
    assert.equal(byOp.get('copy')!.repository, `oci:${join(dir.path, 'copied')}`);
    assert.equal(byOp.get('copy')!.tag, sent.tag);

    const recvSteps = recorder();
    const got = await receive({
      repository,
      me: 'bob',
      outDir: join(dir.path, 'inbox'),
      verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] },
      onStep: recvSteps.onStep,
    });
    assert.equal(got.messages.length, 1);
    assertSteps(recvSteps.events, ['fetch-manifest', 'verify', 'download']);
  });

  it('an audit folder that is a symbolic link is refused (exit 4) before anything is pushed or created', async () => {
    const real = join(dir.path, 'real-audit');
    await mkdir(real);
    const link = join(dir.path, 'link-audit');
    await symlink(real, link);
    const mailbox = join(dir.path, 'never-created');
    const r = await runComms(['send', '--repo', `oci:${mailbox}`, '--to', 'bob', '--message', 'x', '--no-sign', '--receipt-dir', link]);
    assert.equal(r.code, 4, describeRun(r));
    assert.match(r.stderr, /symbolic link/);
    await assert.rejects(lstat(mailbox), 'the mailbox was not created');
    assert.deepEqual(await readdir(real), []);
  });

  it('COMMS_RECEIPT_DIR writes the receipt of a CLI ack, and --verbose prints its steps', async () => {
    const audit = join(dir.path, 'env-audit');
    const folder = `oci:${join(dir.path, 'env-box')}`;
    const sent = await send({
      unsigned: true,
      repository: await openRepository(folder, { create: true }),
      recipient: 'bob',
      sender: 'alice',
      input: { text: 'env' },
    });
    const r = await runComms(['ack', '--repo', folder, '--for', sent.digest, '--status', 'accepted', '--no-sign', '--verbose', '--json'], {
      env: { COMMS_RECEIPT_DIR: audit },
    });
    assert.equal(r.code, 0, describeRun(r));
    const [only, ...rest] = await receipts(audit);
    assert.equal(rest.length, 0);
    assert.equal(only!.operation, 'ack');
    assert.equal(only!.digest, (r.json[0] as { digest: string }).digest);
    assert.match(r.stderr, /push-manifest started/);
    assert.match(r.stderr, /write-receipt done/);
  });

  it('receipt file names are built only from checked parts', () => {
    const at = new Date('2026-12-01T10:11:12.345Z');
    assert.equal(auditFileName('send', `sha256:${'ab'.repeat(32)}`, at, '0123abcd'), `20261201T101112_345Z-send-abababababab-0123abcd.json`);
    assert.throws(() => auditFileName('send', 'sha256:../../etc', at, '0123abcd'), /not lowercase letters and digits/);
    assert.throws(() => auditFileName('../x' as 'send', undefined, at, '0123abcd'), /not lowercase letters and digits/);
  });
});
