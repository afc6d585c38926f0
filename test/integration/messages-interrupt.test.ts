/**
 * interrupted transfers of a 1 GiB message (16 chunks of 64 MiB).
 * (a) `comms send --parallel 2` is SIGKILLed once half the chunk layers are stored in
 *     docker-registry (counted in its storage folder); the same send run again (same --session)
 *     finds those layers by digest and uploads only the others — its --json `chunksSkipped` equals
 *     the number stored before, and the registry's access log shows no stored layer uploaded again.
 * (b) `comms recv` SIGKILLed halfway through that message leaves nothing in --out (its partial
 *     file is in the scratch folder outside it); a re-run writes the file with the right sha256
 *     and sweeps the dead process's partial file.
 * zstd level 1 keeps the CPU cost of compressing 1 GiB (twice) low; the layers must come out the
 * same on both runs, which is the property a resumed send relies on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { EMPTY_JSON_DIGEST } from '../../src/oci/mediatypes.ts';
import { collect, spawnComms, TEST_KEY, TEST_PUB, type CliResult } from '../support/cli.ts';
import { sha256File, writeMixedFile } from '../support/messages-data.ts';
import { rawGetManifest } from '../support/messages-raw.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CHUNKS = 16;
const REPO = 'interrupt/mailbox';
const SESSION = '5f0c6a0e-2b1d-4c3e-9f8a-7b6c5d4e3f21';

/**
 * Digests of the layer blobs the registry has stored (`…/blobs/sha256/<xx>/<hex>/data`): every
 * blob but the shared empty config, which a send stores (when absent) while its layers upload.
 */
async function storedBlobs(storageDir: string): Promise<Set<string>> {
  const root = join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  const out = new Set<string>();
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix)).catch(() => [] as string[])) {
      if (`sha256:${hex}` === EMPTY_JSON_DIGEST) continue;
      if (
        await stat(join(root, prefix, hex, 'data')).then(
          () => true,
          () => false,
        )
      )
        out.add(`sha256:${hex}`);
    }
  }
  return out;
}

/** Digests of the blobs whose upload the registry completed, from its access log (`PUT …?digest=`). */
function completedUploads(log: string): string[] {
  const out: string[] = [];
  for (const m of log.matchAll(/"(?:PUT|POST) (\/v2\/[^ "]+) HTTP\/[\d.]+" 20[12]/g)) {
    const digest = new URL(m[1]!, 'http://x').searchParams.get('digest');
    if (digest !== null) out.push(digest);
  }
  return out;
}

/** Polls until `done()` is true; fails after `ms` or when the child exits first. */
async function waitFor(what: string, child: ChildProcess, done: () => Promise<boolean>, ms = 300_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the process ended before ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function killAndCollect(child: ChildProcess, result: Promise<CliResult>): Promise<CliResult> {
  child.kill('SIGKILL');
  const r = await result;
  assert.equal(r.signal, 'SIGKILL', `the process was killed, not finished: ${r.stderr}`);
  return r;
}

if (!requireTool('docker-registry')) {
  it('interrupted transfers', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('interrupted 1 GiB transfers', () => {
    let registry: RegistryServer;
    let work: TempDir;
    let bigFile: string;
    let bigSha: string;
    /**
     * The children's TMPDIR: a private folder on the same filesystem as --out, so the send's spool
     * files (left behind by SIGKILL) go with the suite's folder, and no other test's recv sweeps
     * the partial file this test watches before it has looked.
     */
    let childTmp: string;
    const childEnv = () => ({ env: { TMPDIR: childTmp } });
    const sendArgs = (): string[] => [
      'send',
      bigFile,
      '--repo',
      `${registry.host}/${REPO}`,
      '--to',
      'kim',
      '--sender',
      'lee',
      '--chunk-bytes',
      '64MiB',
      '--compress',
      'zstd',
      '--level',
      '1',
      '--parallel',
      '2',
      '--session',
      SESSION,
      '--key',
      TEST_KEY,
      '--json',
    ];
    /** Set by (a), received by (b). */
    let sentDigest: string | undefined;

    before(async () => {
      [registry, work] = await Promise.all([startRegistry({ mode: 'plain', accessLog: true, logLevel: 'error' }), tempDir('comms-msg-int-')]);
      childTmp = join(work.path, 'tmp');
      await mkdir(childTmp);
      bigFile = join(work.path, 'big.bin');
      bigSha = await writeMixedFile(bigFile, GiB, 7);
    });
    after(async () => {
      await registry?.stop();
      await work?.cleanup();
    });

    it('(a) a send killed halfway, run again with the same --session, uploads only the missing chunks', async (t) => {
      const started = Date.now();
      const child = spawnComms(sendArgs(), childEnv());
      const first = collect(child);
      await waitFor('half the chunks were stored', child, async () => (await storedBlobs(registry.storageDir)).size >= CHUNKS / 2);
      await killAndCollect(child, first);
      const storedBefore = await storedBlobs(registry.storageDir);
      assert.ok(storedBefore.size >= CHUNKS / 2 && storedBefore.size < CHUNKS, `${storedBefore.size} layers stored when killed`);
      const logMark = registry.logs().length;

      const second = await collect(spawnComms(sendArgs(), childEnv()));
      assert.equal(second.code, 0, second.stderr);
      const sent = second.json[0]!;
      assert.equal(sent['chunks'], CHUNKS);
      assert.equal(sent['bytes'], GiB);
      assert.equal(sent['chunksSkipped'], storedBefore.size, 'every layer stored before the kill was skipped');
      sentDigest = String(sent['digest']);

      // The layers of the finished message: the ones stored before plus the rest, uploaded now.
      const manifest = await rawGetManifest(registry.url, REPO, String(sent['tag']));
      const layers = (manifest.json['layers'] as { digest: string }[]).map((l) => l.digest);
      assert.equal(layers.length, CHUNKS);
      for (const d of storedBefore) assert.ok(layers.includes(d), `stored layer ${d} is one of the message's (the re-run made the same bytes)`);
      const uploadedNow = completedUploads(registry.logs().slice(logMark)).filter((d) => layers.includes(d));
      assert.deepEqual(uploadedNow.sort(), layers.filter((d) => !storedBefore.has(d)).sort(), 'exactly the missing layers were uploaded, each once');
      assert.equal((await storedBlobs(registry.storageDir)).size >= CHUNKS, true);
      t.diagnostic(`killed after ${storedBefore.size}/${CHUNKS} layers; ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

    it('(b) a recv killed halfway leaves nothing in --out; a re-run completes and sweeps the partial file', async (t) => {
      assert.ok(sentDigest, '(a) sent the message');
      const started = Date.now();
      const out = join(work.path, 'out');
      const recvArgs = ['recv', '--repo', `${registry.host}/${REPO}`, '--me', 'kim', '--out', out, '--trusted-key', TEST_PUB, '--json'];
      // --out and the children's temp folder share a filesystem, so partial files go to the
      // scratch folder in the temp folder, outside --out (materialize.ts, openScratch).
      const scratch = join(childTmp, `comms-partial-${process.getuid?.() ?? 0}`);

      const child = spawnComms(recvArgs, childEnv());
      const first = collect(child);
      const pid = child.pid!;
      let partial: string | undefined;
      await waitFor('half the message was written', child, async () => {
        const name = (await readdir(scratch).catch(() => [] as string[])).find((n) => n.startsWith(`${pid}-`) && n.endsWith('.part'));
        if (name === undefined) return false;
        partial = join(scratch, name);
        // Chunks land at their offsets in parallel: count the blocks written, not the apparent size.
        const st = await stat(partial).catch(() => undefined);
        return st !== undefined && st.blocks * 512 >= GiB / 2;
      });
      await killAndCollect(child, first);
      assert.deepEqual(await readdir(out), [], '--out holds nothing after the kill');
      assert.ok(
        partial !== undefined &&
          (await stat(partial).then(
            () => true,
            () => false,
          )),
        'the dead process left its partial file in the scratch folder',
      );

      const second = await collect(spawnComms(recvArgs, childEnv()));
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.json.length, 1);
      assert.equal(second.json[0]!['digest'], sentDigest);
      assert.equal(second.json[0]!['path'], join(out, 'big.bin'));
      assert.deepEqual(await readdir(out), ['big.bin']);
      assert.equal(await sha256File(join(out, 'big.bin')), bigSha);
      assert.equal(
        await stat(partial).then(
          () => true,
          () => false,
        ),
        false,
        "the re-run swept the dead process's partial file",
      );
      await rm(out, { recursive: true, force: true });
      t.diagnostic(`recv killed and re-run: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  });
}
