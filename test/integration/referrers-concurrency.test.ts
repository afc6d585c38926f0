/**
 * 20 processes ack the same message at the same moment on docker-registry
 * (no Referrers API, so all 20 read-modify-write the same `sha256-<hex>` tag-schema index), in
 * 10 runs with a fresh message each. Every receipt must be discovered afterwards — by
 * findReferrers and by `comms discover` — and every one must also be in the tag-schema index itself:
 * racing writers clobber each other's index updates, and each writer's check of the index against
 * the receipt tags (SPEC §9.1) must repair that (0 missing from the index, each run). The tags remain the record (SPEC §9.3).
 *
 * A reader polls discovery throughout each run (an agent waiting for receipts) and must never
 * fail: docker-registry answers 500 to index reads that race a write.
 *
 * The 20 children are started once and kept for all runs (see referrers-ack-child.ts): each run
 * releases them together by creating one file they all watch.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { findReferrers, send } from '../../src/index.ts';
import { referrersTag } from '../../src/oci/remote/referrers.ts';
import { readReferrersIndex } from '../../src/oci/remote/tag-schema.ts';
import { ArtifactType } from '../../src/protocol/constants.ts';
import { countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';
import { childCompileCache, describeRun, PROJECT_ROOT, runComms } from '../support/cli.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const CHILDREN = 20;
const RUNS = 10;
/** A run that has not finished by then is stuck (a child hung), not slow. */
const RUN_TIMEOUT_MS = 240_000;

interface AckLine {
  round: number;
  child: string;
  digest?: string;
  tag?: string;
  indexedBy?: string;
  indexWrites: number;
  ms: number;
  error?: { code?: string; message?: string };
}

if (!requireTool('docker-registry')) {
  it('20 concurrent acks on docker-registry', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('20 processes acking one message at once on docker-registry', () => {
    let backend: Backend;
    let signals: TempDir;
    let ref: string;
    let c: CountingRepo;
    const children: ChildProcess[] = [];
    const lines: AckLine[] = [];
    const waiters: (() => void)[] = [];
    const wake = () => waiters.splice(0).forEach((w) => w());
    let ready = 0;
    let childFailure: string | undefined;

    /** Resolves when `done()` holds; rejects when a child died or the run outlived its bound. */
    const until = (done: () => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), RUN_TIMEOUT_MS);
        const check = () => {
          if (childFailure !== undefined) {
            clearTimeout(timer);
            reject(new Error(childFailure));
          } else if (done()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });

    before(async () => {
      backend = await startBackend('docker-registry');
      signals = await tempDir('comms-ack-signal-');
      ref = backend.freshRepo('race');
      c = countingRepo(ref);
      const env = { ...process.env, NODE_COMPILE_CACHE: childCompileCache() };
      const script = join(PROJECT_ROOT, 'test/support/referrers-ack-child.ts');
      // One child with no rounds fills the compile cache, so the 20 do not all compile at once.
      const warm = spawn(process.execPath, [script, ref, signals.path, '0', 'warm'], { env, stdio: 'ignore' });
      await new Promise((resolve) => warm.once('exit', resolve));
      for (let i = 0; i < CHILDREN; i++) {
        const child = spawn(process.execPath, [script, ref, signals.path, String(RUNS), String(i)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
        child.once('exit', (code, sig) => {
          if (code !== 0) childFailure = `ack child ${i} exited ${code ?? sig}: ${stderr.slice(0, 2000)}`;
          wake();
        });
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const o = JSON.parse(line) as AckLine & { ready?: boolean };
          if (o.ready) ready++;
          else lines.push(o);
          wake();
        });
        children.push(child);
      }
      await until(() => ready === CHILDREN, 'the ack children to start');
    });

    after(async () => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      await c?.close();
      await backend?.stop();
      await signals?.cleanup();
    });

    it(`all ${CHILDREN} receipts are discovered, and all are in the tag-schema index, in each of ${RUNS} runs (0 lost, 0 missing from the index)`, async (t) => {
      const indexMissing: number[] = [];
      const started = Date.now();
      for (let round = 1; round <= RUNS; round++) {
        const message = await send({ unsigned: true, repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: `run ${round}` } });
        const roundStart = Date.now();
        // Written aside then renamed, so no child ever reads a half-written digest.
        const tmp = join(signals.path, `.go-${round}.tmp`);
        await writeFile(tmp, message.digest);
        await rename(tmp, join(signals.path, `go-${round}`));
        // Meanwhile a reader polls discovery, as an agent in waitForReceipt would: the racing
        // index writes must never make a poll fail.
        let reading = true;
        const readErrors: string[] = [];
        let polls = 0;
        const reader = (async () => {
          while (reading) {
            polls++;
            try {
              await findReferrers(c.repo, message.descriptor, { artifactType: ArtifactType.Receipt });
            } catch (err) {
              readErrors.push(String(err));
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        try {
          await until(() => lines.filter((l) => l.round === round).length === CHILDREN, `run ${round}'s acks`);
        } finally {
          reading = false;
          await reader;
        }
        assert.deepEqual(readErrors, [], `run ${round}: discovery polled during the acks never failed`);
        const acks = lines.filter((l) => l.round === round);
        const failed = acks.filter((l) => l.error !== undefined);
        assert.deepEqual(failed, [], `every ack of run ${round} succeeded`);
        const receipts = new Set(acks.map((l) => l.digest!));
        assert.equal(receipts.size, CHILDREN, 'twenty distinct receipts');
        for (const l of acks) assert.equal(l.indexedBy, 'tag-schema');

        // The index alone (what a reader without the tag union sees).
        const index = await readReferrersIndex(c.repo, referrersTag(message.digest));
        const inIndex = new Set(index.manifests.map((d) => d.digest));
        const missing = [...receipts].filter((d) => !inIndex.has(d)).length;
        indexMissing.push(missing);

        // Discovery, library: the union of the index and the receipt tags loses none.
        const found = await findReferrers(c.repo, message.descriptor, { artifactType: ArtifactType.Receipt });
        assert.deepEqual(new Set(found.map((d) => d.digest)), receipts, `run ${round}: findReferrers finds all ${CHILDREN}`);
        // The tags alone are the record: every receipt is named by its own receipt-<hex12>- tag.
        const byTag = await findReferrers(c.repo, message.descriptor, { artifactType: ArtifactType.Receipt, source: 'tag' });
        assert.deepEqual(new Set(byTag.map((d) => d.digest)), receipts, `run ${round}: every receipt has its tag`);
        // Discovery, CLI.
        const cli = await runComms(['discover', '--repo', ref, message.digest, '--artifact-type', ArtifactType.Receipt, '--json', '--plain-http']);
        assert.equal(cli.code, 0, describeRun(cli));
        assert.deepEqual(new Set(cli.json.map((l) => l['digest'])), receipts, `run ${round}: comms discover finds all ${CHILDREN}`);

        const writes = acks.map((l) => l.indexWrites);
        t.diagnostic(
          `run ${round}: ${CHILDREN}/${CHILDREN} discovered; missing from the index alone: ${missing}; ` +
            `index writes per ack max ${Math.max(...writes)}, total ${writes.reduce((a, b) => a + b, 0)}; ` +
            `slowest ack ${Math.max(...acks.map((l) => l.ms))} ms; ${polls} discovery polls meanwhile; run ${Date.now() - roundStart} ms`,
        );
        // The tag check repaired every clobbered entry: the index alone lists all of them.
        assert.deepEqual(
          [...receipts].filter((d) => !inIndex.has(d)),
          [],
          `run ${round}: ${missing} of ${CHILDREN} receipts missing from the tag-schema index`,
        );
      }
      t.diagnostic(`missing from the index alone per run: [${indexMissing.join(', ')}]; ${RUNS} runs in ${Date.now() - started} ms`);
    });
  });
}
